import { lstat, readlink } from "node:fs/promises";
import { join } from "node:path";
import { UnsafePathError } from "../model/errors.js";

/** Linux gives up after 40 symlinks in one lookup (MAXSYMLINKS); so does this. */
const MAX_SYMLINK_HOPS = 40;

/**
 * Where image path `path` leads inside the root file system at host directory `root`,
 * following symlinks as a process chrooted there would: absolute targets start at the
 * root and `..` stops at it, so the answer never leaves `root`. Only links to directories
 * are followed (a dangling link, or one to a file, stays in the path as written), and the
 * last component only when `followLast`. Returns the resolved image path ("" is the root).
 */
export async function resolveInRoot(root: string, path: string, followLast: boolean): Promise<string> {
  const budget = { hops: 0 };
  const parts = path.split("/").filter((p) => p !== "");
  const last = followLast ? undefined : parts.pop();
  const dir = await follow(root, [], parts, budget, path);
  return [...dir, ...(last === undefined ? [] : [last])].join("/");
}

async function follow(root: string, start: string[], parts: readonly string[], budget: { hops: number }, asked: string): Promise<string[]> {
  let resolved = [...start];
  for (const part of parts) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      resolved.pop();
      continue;
    }
    resolved.push(part);
    const host = join(root, ...resolved);
    const st = await lstat(host).catch(() => undefined);
    if (!st?.isSymbolicLink()) continue;
    if (++budget.hops > MAX_SYMLINK_HOPS) {
      throw new UnsafePathError(`the path ${JSON.stringify(asked)} goes through more than ${MAX_SYMLINK_HOPS} symbolic links in the image (a loop?); fix the links`);
    }
    const target = await readlink(host);
    const from = target.startsWith("/") ? [] : resolved.slice(0, -1);
    const landed = await follow(root, from, target.split("/"), budget, asked);
    const landedSt = await lstat(join(root, ...landed)).catch(() => undefined);
    if (landed.length === 0 || landedSt?.isDirectory()) resolved = landed;
  }
  return resolved;
}

/**
 * Whether `path` names an executable regular file inside the root, following symlinks
 * (to files too) as a chrooted process would; e.g. `bin/sh -> busybox`.
 */
export async function isExecutableInRoot(root: string, path: string): Promise<boolean> {
  let current = path;
  for (let hops = 0; hops <= MAX_SYMLINK_HOPS; hops++) {
    const resolved = await resolveInRoot(root, current, false);
    const host = join(root, resolved);
    const st = await lstat(host).catch(() => undefined);
    if (st === undefined) return false;
    if (!st.isSymbolicLink()) return st.isFile() && (st.mode & 0o111) !== 0;
    const target = await readlink(host);
    const dir = resolved.includes("/") ? resolved.slice(0, resolved.lastIndexOf("/")) : "";
    current = target.startsWith("/") ? target : `${dir}/${target}`;
  }
  return false;
}
