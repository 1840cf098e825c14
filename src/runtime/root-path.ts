import { lstatSync, readlinkSync } from "node:fs";
import { lstat } from "node:fs/promises";
import { join } from "node:path";
import { resolveLinks, type FollowRules, type RootEntry, type RootView } from "../model/root-resolve.js";

/**
 * Image paths inside a root file system staged in a host directory, where the image's own
 * links must be followed as a process chrooted there would follow them, and never lead
 * out to the host. The walk is the shared one of model/root-resolve.ts; this module only
 * shows it the directory.
 */

/**
 * A host directory seen by the link resolver. It reads synchronously: the resolver is
 * synchronous (it also serves the in-memory tree), and staging does one thing at a time.
 */
function hostRootView(root: string): RootView {
  return {
    name: `the image root ${root}`,
    lookup(path: string): RootEntry | undefined {
      const host = join(root, path);
      try {
        const st = lstatSync(host, { throwIfNoEntry: false });
        if (st === undefined) return undefined;
        if (st.isDirectory()) return { kind: "dir" };
        if (st.isSymbolicLink()) return { kind: "symlink", target: readlinkSync(host) };
        // A hard link on disk is a file like any other: nothing tells it apart, nothing to follow.
        return { kind: "other" };
      } catch {
        // Not a directory on the way, or unreadable: as far as links go, nothing is there.
        return undefined;
      }
    },
  };
}

/**
 * Where image path `path` leads inside the root file system at host directory `root`,
 * following symlinks as a process chrooted there would: absolute targets start at the
 * root and `..` stops at it, so the answer never leaves `root`. Only links to directories
 * are followed (a dangling link, or one to a file, stays in the path as written), and the
 * last component only when `followLast`. Returns the resolved image path ("" is the root).
 * @throws UnsafePathError after more than 40 links in one lookup.
 */
export async function resolveInRoot(root: string, path: string, followLast: boolean): Promise<string> {
  return resolveLinks(hostRootView(root), path, { followLast, follow: "dirs", confine: "clamp" });
}

/** What exec() inside the chroot does with a path: every link followed, to files too. */
const AS_EXEC_SEES_IT: FollowRules = { followLast: true, follow: "all", confine: "clamp" };

/**
 * Whether `path` names an executable regular file inside the root, following symlinks
 * (to files too) as a chrooted process would; e.g. `bin/sh -> busybox`.
 * @throws UnsafePathError after more than 40 links in one lookup.
 */
export async function isExecutableInRoot(root: string, path: string): Promise<boolean> {
  const resolved = resolveLinks(hostRootView(root), path, AS_EXEC_SEES_IT);
  const st = await lstat(join(root, resolved)).catch(() => undefined);
  return st !== undefined && st.isFile() && (st.mode & 0o111) !== 0;
}
