import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { IoError } from "../model/errors.js";

/**
 * Makes a device node or FIFO at `hostPath`. Node has no mknod(2), so this is the one place
 * that runs coreutils' `mknod` (present wherever there is a Linux userland); it never
 * follows a symlink and fails if anything is already at `hostPath`.
 */
export async function makeSpecialFile(hostPath: string, type: "char" | "block" | "fifo", major = 0, minor = 0): Promise<void> {
  const args = type === "fifo" ? [hostPath, "p"] : [hostPath, type === "char" ? "c" : "b", String(major), String(minor)];
  try {
    await promisify(execFile)("mknod", ["-m", "0600", "--", ...args]);
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    const why = e.code === "ENOENT" ? "the mknod program is missing" : (e.stderr?.trim() || e.message);
    const what = type === "fifo" ? "FIFO" : "device node";
    throw new IoError(`the ${what} ${hostPath} cannot be made: ${why}`, { cause: err });
  }
}
