import { readFileSync } from "node:fs";
import { SourceUnreadableError } from "../model/errors.js";
import type { SourceSpec } from "../layer/sources.js";
import { resolveClosure, type Closure, type ClosureOptions } from "./closure/resolve.js";
import type { GeneratedFiles, GeneratedNode } from "./generated-files.js";
import type { BuiltinName } from "./spec-schema.js";

/**
 * The `{ "builtin": NAME }` sources: what a dockerTools user adds to an image that has no
 * base (`dockerTools.fakeNss`, `caCertificates`, `binSh`, `usrBinEnv`), and a /tmp.
 * Each becomes ordinary single-path sources: generated files (generated-files.ts) with
 * fixed content and mode, or a host program's closure (closure/resolve.ts).
 */

/** What a builtin adds: its sources, and the closure facts of any program in it. */
export type BuiltinSources = { sources: SourceSpec[] } & Pick<Closure, "programs" | "notes">;

/** Users known to every image: root, and nobody for programs that drop privileges. */
const PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
const GROUP = "root:x:0:\nnobody:x:65534:\n";
/** Every database from files (glibc's files backend is inside libc since 2.34), hosts from DNS as well. */
const NSSWITCH = [
  "passwd: files", "group: files", "shadow: files", "hosts: files dns",
  "networks: files", "protocols: files", "services: files", "ethers: files", "rpc: files",
].map((l) => `${l}\n`).join("");

/** Where distributions keep the CA bundle, the first found being the host's. */
export const HOST_CA_BUNDLES = [
  "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Alpine, Arch, Gentoo
  "/etc/pki/tls/certs/ca-bundle.crt", // Fedora, RHEL, CentOS
  "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // RHEL 7+
  "/etc/ssl/ca-bundle.pem", // openSUSE
  "/etc/ssl/cert.pem", // Alpine (LibreSSL), BSDs
  "/etc/ssl/certs/ca-bundle.crt", // NixOS
];
/** The bundle's place in the image, and the other paths that TLS libraries (Go, OpenSSL, curl, nixpkgs) look in. */
export const IMAGE_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";
const IMAGE_CA_LINKS: Array<{ path: string; target: string }> = [
  { path: "/etc/ssl/certs/ca-bundle.crt", target: "ca-certificates.crt" },
  { path: "/etc/ssl/cert.pem", target: "certs/ca-certificates.crt" },
  { path: "/etc/pki/tls/certs/ca-bundle.crt", target: IMAGE_CA_BUNDLE },
];

/** What builtinSources needs: where generated files go, and how host program closures are resolved. */
export interface BuiltinContext extends ClosureOptions {
  generated: GeneratedFiles;
  /** Where to look for the host's CA bundle (default HOST_CA_BUNDLES; for tests). */
  caBundles?: readonly string[];
}

/**
 * The sources of one builtin. Throws SourceUnreadableError for caCertificates when the host has no
 * readable CA bundle, and for binSh or usrBinEnv as resolveClosure does.
 */
export async function builtinSources(name: BuiltinName, ctx: BuiltinContext): Promise<BuiltinSources> {
  switch (name) {
    case "fakeNss":
      return made(ctx, [
        ["/etc/passwd", file(PASSWD)],
        ["/etc/group", file(GROUP)],
        ["/etc/nsswitch.conf", file(NSSWITCH)],
      ]);
    case "caCertificates":
      return made(ctx, [
        [IMAGE_CA_BUNDLE, { type: "file", content: hostCaBundle(ctx.caBundles ?? HOST_CA_BUNDLES), mode: 0o644 }],
        ...IMAGE_CA_LINKS.map(({ path, target }): [string, GeneratedNode] => [path, { type: "symlink", target }]),
      ]);
    case "binSh":
      return closureSources(["/bin/sh"], ctx);
    case "usrBinEnv":
      return closureSources(["/usr/bin/env"], ctx);
    case "tmp":
      return made(ctx, [["/tmp", { type: "dir", mode: 0o1777 }]]);
  }
}

function file(text: string): GeneratedNode {
  return { type: "file", content: Buffer.from(text, "utf8"), mode: 0o644 };
}

async function made(ctx: BuiltinContext, nodes: Array<[string, GeneratedNode]>): Promise<BuiltinSources> {
  const sources: SourceSpec[] = [];
  for (const [to, node] of nodes) sources.push({ from: await ctx.generated.place(node), to });
  return { sources, programs: [], notes: [] };
}

/** A closure's paths as sources at the same paths in the image. */
export function closureSources(programs: readonly string[], opts: ClosureOptions): BuiltinSources {
  const closure = resolveClosure(programs, opts);
  return { sources: closure.paths.map((p) => ({ from: p, to: p })), programs: closure.programs, notes: closure.notes };
}

/** The bytes of the first CA bundle found on the host (links followed). */
function hostCaBundle(candidates: readonly string[]): Buffer {
  for (const path of candidates) {
    try {
      return readFileSync(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "ENOTDIR" && code !== "EISDIR") {
        throw new SourceUnreadableError(`the host's CA bundle ${path} cannot be read for the builtin caCertificates: ${(err as Error).message}`, { cause: err });
      }
    }
  }
  throw new SourceUnreadableError(`the builtin caCertificates copies the host's CA bundle, and none of ${candidates.join(", ")} exists; install the host's ca-certificates package`);
}
