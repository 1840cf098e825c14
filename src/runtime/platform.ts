import { readFile, readdir } from "node:fs/promises";
import { RuntimeError } from "../model/errors.js";
import type { Platform } from "../model/oci.js";
import { formatPlatform, hostPlatform } from "../model/platform.js";

/**
 * Whether this machine can run programs of another platform: its own architecture, or one
 * the kernel hands to an emulator through binfmt_misc (qemu-user's handlers are named
 * `qemu-<arch>`). runAsRoot runs the image's own /bin/sh, so it needs one of the two.
 */

/** Go's architecture names as qemu spells its user-mode emulators. */
const QEMU_NAMES: Record<string, string> = {
  amd64: "x86_64", arm64: "aarch64", arm: "arm", "386": "i386", ppc64le: "ppc64le", s390x: "s390x",
  riscv64: "riscv64", mips64le: "mips64el", mipsle: "mipsel", loong64: "loongarch64",
};

const BINFMT = "/proc/sys/fs/binfmt_misc";

/** An enabled binfmt_misc handler for the architecture, if the kernel has one registered. */
async function emulated(architecture: string): Promise<boolean> {
  const qemu = QEMU_NAMES[architecture] ?? architecture;
  const names = await readdir(BINFMT).catch(() => [] as string[]);
  for (const name of names) {
    if (name !== `qemu-${qemu}` && !name.endsWith(`-${qemu}`)) continue;
    const state = await readFile(`${BINFMT}/${name}`, "utf8").catch(() => "");
    if (state.startsWith("enabled")) return true;
  }
  return false;
}

/** Refuses, before any work, to run `what` for a platform this machine cannot execute. */
export async function checkRunnable(platform: Platform, what: string): Promise<void> {
  const host = hostPlatform();
  if (platform.os !== host.os) {
    throw new RuntimeError(`${what} cannot run for ${formatPlatform(platform)} on this ${host.os} machine; build that platform without runAsRoot, or on a ${platform.os} machine`);
  }
  if (platform.architecture === host.architecture || await emulated(platform.architecture)) return;
  throw new RuntimeError(`${what} cannot run for ${formatPlatform(platform)} on this ${formatPlatform(host)} machine: the kernel has no binfmt_misc handler for ${platform.architecture} (install qemu-user-static, or build that platform without runAsRoot)`);
}
