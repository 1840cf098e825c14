import type { Platform } from "./oci.js";

/** Node's `process.arch` in Go's spelling, as image configs and indexes use it. */
const GO_ARCH: Record<string, string> = {
  x64: "amd64", arm64: "arm64", arm: "arm", ia32: "386",
  ppc64: "ppc64le", s390x: "s390x", riscv64: "riscv64", loong64: "loong64", mips: "mips", mipsel: "mipsle",
};

/** The platform of this machine as linux/<Go arch>, with variant v8 on arm64 and v7 on arm. */
export function hostPlatform(): Platform {
  const architecture = GO_ARCH[process.arch] ?? process.arch;
  const p: Platform = { architecture, os: "linux" };
  if (architecture === "arm64") p.variant = "v8";
  if (architecture === "arm") p.variant = "v7";
  return p;
}

/** Parses `os/arch[/variant]` as `--platform` takes it. */
export function parsePlatform(s: string): Platform | undefined {
  const parts = s.split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === "")) return undefined;
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

/** A platform as `os/arch[/variant]`, the spelling parsePlatform reads. */
export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join("/");
}

/** Whether a descriptor's platform satisfies a wanted one (variant compared only when both name one). */
export function platformMatches(have: Platform | undefined, want: Platform): boolean {
  if (!have) return false;
  if (have.os !== want.os || have.architecture !== want.architecture) return false;
  if (want.variant && have.variant && want.variant !== have.variant) return false;
  return true;
}
