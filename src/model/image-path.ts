import { UnsafePathError } from "./errors.js";

/**
 * Paths inside an image, in one canonical spelling: relative to the image root, no
 * leading or trailing slash, no `.` or empty components, no `..`; "" is the root.
 * Every path read from a tar, a spec or a source walk goes through `cleanPath`, so the
 * rest of the code compares strings and never re-parses.
 */

/**
 * The canonical form of `raw` (a tar entry name, a spec path, a link target inside the
 * image). Leading `./` and `/` are dropped, `//` and `.` collapse, a `..` that stays
 * inside the root is applied. `what` names the source of the path in the error.
 * @throws UnsafePathError when `raw` holds a NUL byte or a `..` would climb above the root.
 */
export function cleanPath(raw: string, what = "a path"): string {
  if (raw.includes("\0")) {
    throw new UnsafePathError(`${what} ${JSON.stringify(raw)} contains a NUL byte; remove it`);
  }
  const out: string[] = [];
  for (const part of raw.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length === 0) {
        throw new UnsafePathError(`${what} ${JSON.stringify(raw)} climbs above the image root with ".."; use a path inside the image`);
      }
      out.pop();
      continue;
    }
    out.push(part);
  }
  return out.join("/");
}

/** The parent of a canonical path ("" for a top-level name and for the root itself). */
export function parentPath(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash < 0 ? "" : path.slice(0, slash);
}

/** The last component of a canonical path. */
export function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** Joins canonical paths, either of which may be the root "". */
export function joinPath(dir: string, name: string): string {
  if (dir === "") return name;
  if (name === "") return dir;
  return `${dir}/${name}`;
}

/** Every proper ancestor of a canonical path, outermost first, root excluded ("a/b/c" → ["a", "a/b"]). */
export function ancestorsOf(path: string): string[] {
  const out: string[] = [];
  for (let i = path.indexOf("/"); i >= 0; i = path.indexOf("/", i + 1)) out.push(path.slice(0, i));
  return out;
}

/** Whether `path` is `dir` itself or lies below it. */
export function isAtOrBelow(path: string, dir: string): boolean {
  return dir === "" || path === dir || path.startsWith(`${dir}/`);
}

const isSurrogate = (c: number): boolean => c >= 0xd800 && c <= 0xdfff;

/**
 * Orders paths by the bytes of their UTF-8 encoding, the order tar entries are written in.
 * JavaScript's `<` compares UTF-16 code units, which disagrees with UTF-8 byte order only
 * when a surrogate (a character above U+FFFF) meets a character in U+E000..U+FFFF, so that
 * one case is corrected here instead of encoding every path.
 */
export function comparePaths(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
    if (isSurrogate(ca) !== isSurrogate(cb) && (ca >= 0xe000 || cb >= 0xe000)) {
      return isSurrogate(ca) ? 1 : -1;
    }
    return ca - cb;
  }
  return a.length - b.length;
}
