import { constants } from "node:fs";
import { chmod, chown, copyFile, lchown, link, lstat, mkdir, open, rm, symlink } from "node:fs/promises";
import type { Stats } from "node:fs";
import { join } from "node:path";
import { ioError, throwIfAborted } from "../model/errors.js";
import type { SourceNode, SourceTree } from "../layer/sources.js";
import { sourceUnreadable } from "../layer/source-error.js";
import { baseName, joinPath, parentPath } from "../model/image-path.js";
import { makeSpecialFile } from "../flatten/special-files.js";
import { resolveInRoot } from "../runtime/root-path.js";

/**
 * Makes a walked source tree (src/layer/sources.ts) real in a directory on disk: the
 * staging root that extraCommands and runAsRoot scripts work in. The walk has already
 * decided everything a source can decide (overlay order, refused names, hardlink groups,
 * unreadable sources, sockets left out), so staging and a direct build agree on what the
 * sources hold and fail with the same codes. What is left here is what only a disk has:
 * what the root already holds (a base image's root file system) is merged into, and
 * the root's own symlinks to directories are followed inside it, as a chrooted process
 * would (`lib/x` lands in `usr/lib/x` when `lib -> usr/lib`).
 */

/** How a tree is laid down into a root; a fired `signal` stops the copy with an AbortedError. */
export interface LayDownOptions {
  /** Owner to give every laid path (runAsRoot's root file system); the copier's own when absent. */
  owner?: { uid: number; gid: number };
  /**
   * Told the host path of every path given `owner` (hard links included): runAsRoot as an
   * ordinary user must know which paths hold the spec's owner when it cannot be represented.
   */
  onOwned?: (hostPath: string) => void;
  signal?: AbortSignal;
}

interface LayState {
  root: string;
  opts: LayDownOptions;
  /** Image path of each directory of the tree → the path it has in the root, the root's links followed. */
  dirs: Map<string, string>;
  /** Hardlink group (its first member's image path) → the copy the other members link to. */
  groups: Map<string, { host: string; ino: number }>;
  /** Directories to give their source mode once everything below them is written, parents first. */
  modesLater: Array<{ host: string; mode: number }>;
  /** Root paths of the directories made only to hold a source's `to`. */
  madeForTo: string[];
}

/**
 * Writes `tree` into host directory `root`: directories, regular files (copied), symlinks
 * (never followed), device nodes and FIFOs, hardlink groups as hard links, each with its
 * mode, and owned by `opts.owner` when given. A directory merges into a directory already
 * there (or one a root symlink leads to); anything else replaces what is there.
 * Directory modes are set last, so a read-only source directory still gets its children.
 * Returns the root paths of the directories made only to hold a source's `to` (the
 * tree's synthetic directories that the root did not already have).
 * @throws GantryError SOURCE_UNREADABLE naming a host file whose bytes cannot be read;
 *         IO when the root cannot be written.
 */
export async function layTree(tree: SourceTree, root: string, opts: LayDownOptions = {}): Promise<string[]> {
  const state: LayState = { root, opts, dirs: new Map([["", ""]]), groups: new Map(), modesLater: [], madeForTo: [] };
  // Byte order: every directory comes before what it holds.
  for (const [path, node] of tree.entries()) {
    throwIfAborted(opts.signal);
    const parent = state.dirs.get(parentPath(path));
    if (parent === undefined) throw new Error(`staging reached ${path} before its directory (the tree is not in byte order)`);
    const at = joinPath(parent, baseName(path));
    if (node.type === "dir") state.dirs.set(path, await layDir(state, at, node));
    else await layNonDir(state, at, node);
  }
  // Children before parents, so a directory losing its write bit cannot stop a child's chmod.
  for (const { host, mode } of state.modesLater.reverse()) await setOwnerAndMode(state, host, mode);
  return state.madeForTo;
}

/** Lays directory `node` at root path `at`; returns where it is in the root (a root link followed). */
async function layDir(state: LayState, at: string, node: SourceNode): Promise<string> {
  const { root } = state;
  const existing = await lstatInRoot(root, at);
  let dir: string | undefined;
  if (existing?.isDirectory()) dir = at;
  else if (existing?.isSymbolicLink()) {
    const followed = await resolveInRoot(root, at, true);
    if ((await lstatInRoot(root, followed))?.isDirectory()) dir = followed;
  }
  if (dir !== undefined) {
    // A directory made to hold a `to` has no mode of its own: the root's stays.
    if (!node.synthetic) state.modesLater.push({ host: join(root, dir), mode: node.mode });
    return dir;
  }
  // Nothing there, a file, or a link leading nowhere useful: a directory takes its place.
  const host = join(root, at);
  if (existing !== undefined) await removeInRoot(host);
  await mkdir(host, 0o700).catch((err: unknown) => { throw ioError(`the staging directory ${host}`, err); });
  if (node.synthetic) {
    state.madeForTo.push(at);
    await setOwnerAndMode(state, host, node.mode);
  } else {
    state.modesLater.push({ host, mode: node.mode });
  }
  return at;
}

/** Lays a file, symlink or special file at root path `at`, replacing whatever is there. */
async function layNonDir(state: LayState, at: string, node: SourceNode): Promise<void> {
  const host = join(state.root, at);
  await removeInRoot(host);
  switch (node.type) {
    case "file":
      await layFile(state, host, node);
      return;
    case "symlink":
      await symlink(node.linkname ?? "", host).catch((err: unknown) => { throw ioError(`the staging symlink ${host}`, err); });
      if (state.opts.owner) {
        const { uid, gid } = state.opts.owner;
        await lchown(host, uid, gid).catch((err: unknown) => { throw ioError(`the staging symlink ${host}`, err); });
        state.opts.onOwned?.(host);
      }
      return;
    case "char":
    case "block":
    case "fifo":
      await makeSpecialFile(host, node.type, node.devmajor ?? 0, node.devminor ?? 0);
      await setOwnerAndMode(state, host, node.mode);
      return;
    default:
      throw new Error(`staging met a ${node.type} node at ${at}, which layDir handles`);
  }
}

/** A regular file: a hard link to its group's earlier copy when there is one, else a copy of its host file. */
async function layFile(state: LayState, host: string, node: SourceNode): Promise<void> {
  const group = node.hardlinkGroup;
  const earlier = group === undefined ? undefined : state.groups.get(group);
  // The earlier copy counts only if nothing laid since (through a root link) replaced it.
  if (earlier !== undefined && (await lstat(earlier.host).catch(() => undefined))?.ino === earlier.ino) {
    await link(earlier.host, host).catch((err: unknown) => { throw ioError(`the staging hard link ${host}`, err); });
    if (state.opts.owner) state.opts.onOwned?.(host);
    return;
  }
  await copySourceFile(node.hostPath, host);
  await setOwnerAndMode(state, host, node.mode);
  if (group !== undefined) state.groups.set(group, { host, ino: (await lstat(host)).ino });
}

/**
 * Copies a source file's bytes (copyFile: the kernel's copy, a reflink where the file
 * system can). A failure is the source's (SOURCE_UNREADABLE, as when a layer is packed
 * from it) if the source cannot be opened for reading, else the staging copy's (IO).
 */
async function copySourceFile(from: string | undefined, to: string): Promise<void> {
  if (from === undefined) throw new Error(`the walked file staged at ${to} has no host path`);
  try {
    await copyFile(from, to, constants.COPYFILE_EXCL);
  } catch (err) {
    const unreadable = await whyUnreadable(from);
    throw unreadable !== undefined ? sourceUnreadable(from, unreadable) : ioError(`the staging copy ${to} of ${from}`, err);
  }
}

/** The error opening `path` for reading gives, or undefined when it opens. */
async function whyUnreadable(path: string): Promise<unknown> {
  try {
    await (await open(path, "r")).close();
    return undefined;
  } catch (err) {
    return err;
  }
}

/** Owner first (chown clears setuid and setgid), then the mode. */
async function setOwnerAndMode(state: LayState, host: string, mode: number): Promise<void> {
  try {
    if (state.opts.owner) {
      await chown(host, state.opts.owner.uid, state.opts.owner.gid);
      state.opts.onOwned?.(host);
    }
    await chmod(host, mode);
  } catch (err) {
    throw ioError(`the staging path ${host}`, err);
  }
}

/** What is at root path `path` (not followed), or undefined when nothing is. */
async function lstatInRoot(root: string, path: string): Promise<Stats | undefined> {
  const host = join(root, path);
  try {
    return await lstat(host);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw ioError(`the staging path ${host}`, err);
  }
}

async function removeInRoot(host: string): Promise<void> {
  await rm(host, { recursive: true, force: true }).catch((err: unknown) => { throw ioError(`the staging path ${host}`, err); });
}
