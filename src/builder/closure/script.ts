import { closeSync, readSync } from "node:fs";
import { openSourceSync, sourceUnreadable } from "../../layer/source-error.js";

/**
 * What the kernel runs for a script: the `#!` line's interpreter (binfmt_script reads the
 * first 256 bytes; the interpreter is the first word after `#!`, the rest of the line is
 * one argument). Only the first bytes of a file are read, to tell a script from an ELF
 * program and from anything else.
 */

/** The kernel's BINPRM_BUF_SIZE: it reads no more of a file to decide how to run it. */
export const HEAD_BYTES = 256;

/** A script's `#!` line as the kernel reads it. */
export interface Shebang {
  /** The interpreter's path, as written (the kernel does not search PATH). */
  interpreter: string;
  /** The one optional argument, as the kernel passes it. */
  argument?: string;
}

/** The first HEAD_BYTES bytes of a host file (fewer if it is shorter). */
export function readHead(hostPath: string): Buffer {
  const fd = openSourceSync(hostPath);
  try {
    const buf = Buffer.alloc(HEAD_BYTES);
    const n = readSync(fd, buf, 0, HEAD_BYTES, 0);
    return buf.subarray(0, n);
  } catch (err) {
    throw sourceUnreadable(hostPath, err);
  } finally {
    closeSync(fd);
  }
}

/** The `#!` line of a file's head, or undefined when it has none (or names no interpreter). */
export function parseShebang(head: Buffer): Shebang | undefined {
  if (head.length < 2 || head[0] !== 0x23 || head[1] !== 0x21) return undefined;
  const newline = head.indexOf(0x0a);
  const line = head.toString("utf8", 2, newline === -1 ? head.length : newline).replace(/\0.*$/s, "");
  const match = /^[ \t]*([^ \t]+)(?:[ \t]+(.*?))?[ \t\r]*$/s.exec(line);
  if (match === null || match[1] === undefined) return undefined;
  const out: Shebang = { interpreter: match[1].replace(/\r$/, "") };
  if (match[2] !== undefined && match[2] !== "") out.argument = match[2];
  return out;
}
