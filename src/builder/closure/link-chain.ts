import { lstatSync, readlinkSync } from "node:fs";
import { posix } from "node:path";
import { SourceUnreadableError } from "../../model/errors.js";

/**
 * Resolves a host path the way the kernel does, one component at a time, and records
 * every symbolic link met on the way. Each link is recorded at a path whose directories
 * are real (the links before it already resolved), so copying the links and the final
 * file, each at its own path, makes the original path resolve in the image exactly as on
 * the host: on merged-/usr Debian, /lib64/ld-linux-x86-64.so.2 gives the links /lib64
 * (-> usr/lib64), /usr/lib64/ld-linux-x86-64.so.2 (-> /lib/x86_64-linux-gnu/...) and /lib
 * (-> usr/lib), and the file /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2.
 */

/** What linkChain found: the symbolic links on the way, and where the path ends up. */
export interface LinkChain {
  /** Absolute paths of the symbolic links met, in the order met. */
  links: string[];
  /** The path with every link resolved (what realpath gives). */
  real: string;
}

/** As the kernel's limit on links followed in one lookup. */
const MAX_LINKS = 40;

/**
 * @param path an absolute, existing host path.
 * @param what says what the path is, for errors ("the closureOf program", "the loader of /usr/bin/ls").
 * @throws GantryError SOURCE_UNREADABLE when a component does not exist, is not a directory, or links loop.
 */
export function linkChain(path: string, what: string): LinkChain {
  const links: string[] = [];
  const pending = path.split("/").reverse();
  let real = "/";
  let followed = 0;
  while (pending.length > 0) {
    const name = pending.pop()!;
    if (name === "" || name === ".") continue;
    if (name === "..") {
      real = posix.dirname(real);
      continue;
    }
    const at = posix.join(real, name);
    let isLink: boolean;
    try {
      isLink = lstatSync(at).isSymbolicLink();
    } catch (err) {
      throw lookupError(what, path, at, err);
    }
    if (!isLink) {
      real = at;
      continue;
    }
    if (++followed > MAX_LINKS) throw lookupError(what, path, path, Object.assign(new Error("too many links"), { code: "ELOOP" }));
    links.push(at);
    let target: string;
    try {
      target = readlinkSync(at);
    } catch (err) {
      throw lookupError(what, path, at, err);
    }
    if (target.startsWith("/")) real = "/";
    pending.push(...target.split("/").reverse());
  }
  return { links, real };
}

/** One sentence: which path of which role failed, and why. */
function lookupError(what: string, path: string, at: string, err: unknown): SourceUnreadableError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const why = code === "ENOENT" ? "does not exist"
    : code === "ENOTDIR" ? "is not a directory"
    : code === "ELOOP" ? "is a loop of symbolic links"
    : code === "EACCES" || code === "EPERM" ? "is not readable (permission denied)"
    : ((err as Error | undefined)?.message ?? String(err));
  const where = at === path ? `${what} ${path}` : `${what} ${path} cannot be looked up: ${at}`;
  return new SourceUnreadableError(`${where} ${why}`, { cause: err });
}
