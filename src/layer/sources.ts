import { lstatSync, readdirSync, readlinkSync, type BigIntStats } from "node:fs";
import { isAbsolute } from "node:path";
import { SpecError, UnsafePathError, throwIfAborted } from "../model/errors.js";
import { sourceUnreadable } from "./source-error.js";
import { isWhiteoutName } from "../whiteout/index.js";
import { PathTree } from "./path-tree.js";
import { ancestorsOf, cleanPath, comparePaths, joinPath } from "../model/image-path.js";

/** One copyToRoot source: the contents of host directory `from` laid at image directory `to`. */
export interface SourceSpec {
  /** Absolute host directory (a single file is accepted when `to` is not "/"). */
  from: string;
  /** Absolute directory in the image, usually "/". */
  to: string;
}

/**
 * What a walk found at one image path. Only what the layer may carry is kept: no host
 * owner, no times, no inode numbers, so none of them can leak into a layer.
 */
export interface SourceNode {
  type: "file" | "dir" | "symlink" | "char" | "block" | "fifo";
  /** Permission bits, 0o7777. */
  mode: number;
  /** Bytes of a regular file as seen by the walk; 0 otherwise. */
  size: number;
  /** Symlink target, verbatim. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Host file to read a regular file's bytes from. */
  hostPath?: string;
  /**
   * For a regular file that shares its inode with other walked files: the image path of
   * the group member first in byte order (the same for every member).
   */
  hardlinkGroup?: string;
  /** A directory made to hold a source's `to`; it has no host counterpart and no mode of its own. */
  synthetic?: true;
  /**
   * The host owner, only from a walk asked for owners (a runAsRoot root file system, where
   * the owners the script left are the layer's); the differ then uses it instead of its own.
   */
  uid?: number;
  gid?: number;
}

/**
 * What git's index records of a host file, enough to tell that it changed without reading
 * it: any write moves ctime, which no user call can set back (see cache/stat-index.ts for
 * the same-tick race). Kept beside the tree, never in a SourceNode, so none of it can reach
 * a layer.
 *
 * Spelt as the stat index stores it (fingerprintOf): dev, inode, st_mode, size, mtime and
 * ctime in nanoseconds, NUL-separated. One string per file rather than an object of six
 * fields, five of them bigints: a walk of 100,000 files held 18 MB of those.
 */
export type HostFingerprint = string;

/** A file's fingerprint (see HostFingerprint) from its lstat, read as bigints so inodes and nanoseconds stay exact. */
export function fingerprintOf(st: BigIntStats): HostFingerprint {
  // Joined, not a template literal: V8 keeps one of six parts as a rope of pieces for as long as it is held.
  return [st.dev, st.ino, st.mode, st.size, st.mtimeNs, st.ctimeNs].join("\0");
}

/** The ctime a fingerprint records, in nanoseconds. */
export function fingerprintCtimeNs(fingerprint: HostFingerprint): bigint {
  return BigInt(fingerprint.slice(fingerprint.lastIndexOf("\0") + 1));
}

/** The overlay of every source: image path → SourceNode. */
export class SourceTree extends PathTree<SourceNode> {
  /**
   * From a walk asked for fingerprints: the image path of every regular file in the tree
   * → the fingerprint of the host file its bytes come from. Empty otherwise, and once a
   * layer key was made of the tree (keyOfWalk clears it).
   */
  readonly fingerprints = new Map<string, HostFingerprint>();

  protected implicitDir(): SourceNode {
    return { type: "dir", mode: 0o755, size: 0, synthetic: true };
  }

  /**
   * The part of this tree that holds `paths`: those entries, every directory above them as
   * this tree has it, and their fingerprints. (A layer of some units of a walked tree.)
   */
  subset(paths: Iterable<string>): SourceTree {
    const out = new SourceTree();
    for (const path of paths) {
      for (const dir of ancestorsOf(path)) {
        const node = this.get(dir);
        if (node !== undefined && !out.has(dir)) out.set(dir, node);
      }
      const node = this.get(path);
      if (node === undefined) continue;
      out.set(path, node);
      const fingerprint = this.fingerprints.get(path);
      if (fingerprint !== undefined) out.fingerprints.set(path, fingerprint);
    }
    return out;
  }
}

/** Linux `major()`/`minor()` of a device number (glibc's split of the 64-bit dev_t). */
export function deviceNumbers(rdev: number): { devmajor: number; devminor: number } {
  const high = Math.floor(rdev / 0x1_0000_0000);
  const low = rdev >>> 0;
  return {
    devmajor: ((low >>> 8) & 0xfff) | ((high & 0xfffff000) >>> 0),
    devminor: ((low & 0xff) | ((low >>> 20) << 8) | ((high & 0xfff) << 20)) >>> 0,
  };
}

/**
 * Turns one lstat result into a node, or undefined for what a tar cannot hold (sockets).
 * Stats are read as bigints so inode numbers and nanosecond times stay exact.
 */
function nodeOf(hostPath: string, st: BigIntStats): SourceNode | undefined {
  const mode = Number(st.mode) & 0o7777;
  if (st.isDirectory()) return { type: "dir", mode, size: 0 };
  if (st.isFile()) return { type: "file", mode, size: Number(st.size), hostPath };
  if (st.isSymbolicLink()) {
    try {
      return { type: "symlink", mode: 0o777, size: 0, linkname: readlinkSync(hostPath) };
    } catch (err) {
      throw sourceUnreadable(hostPath, err);
    }
  }
  if (st.isCharacterDevice()) return { type: "char", mode, size: 0, ...deviceNumbers(Number(st.rdev)) };
  if (st.isBlockDevice()) return { type: "block", mode, size: 0, ...deviceNumbers(Number(st.rdev)) };
  if (st.isFIFO()) return { type: "fifo", mode, size: 0 };
  return undefined; // a socket exists only while its server runs; container layers never carry one
}

interface WalkState {
  tree: SourceTree;
  /** dev:ino of regular files with more than one link → where each copy was put, to find hardlink groups. */
  inodes: Map<string, Array<{ path: string; node: SourceNode }>>;
  signal: AbortSignal | undefined;
  owners: boolean;
  /** Whether to fill `tree.fingerprints`: each file's as it is added, the overlay's leftovers dropped at the end. */
  fingerprint: boolean;
  onFile: WalkOptions["onFile"];
  onStat: StatVisitor | undefined;
}

/** How walkSources walks; a fired `signal` rejects with an AbortedError. */
export interface WalkOptions {
  signal?: AbortSignal | undefined;
  /** Keep the host owner of every node (a runAsRoot root file system). */
  owners?: boolean;
  /** Fill `tree.fingerprints` (for the layer cache's key). */
  fingerprint?: boolean;
  /** Told of each regular file as it is found, with its fingerprint (with `fingerprint`), so its hashing can start. */
  onFile?: ((hostPath: string, size: number, fingerprint: HostFingerprint) => void) | undefined;
  /** Told of every lstat the walk makes, in walk order (a snapshot of the sources, cache/source-snapshot.ts). */
  onStat?: StatVisitor | undefined;
}

/**
 * Told of one host entry a walk found: its host path, its lstat, and its depth: 0 for a
 * source's own path, 1 for an entry directly inside a directory source, 2 below that, and so on.
 */
export type StatVisitor = (hostPath: string, st: BigIntStats, depth: number) => void;

/**
 * Walks `sources` (never following symlinks) and overlays them in order: a later source
 * wins per path, and a later non-directory replacing an earlier directory removes that
 * directory's children. Names are visited in byte order, so readdir order, times, inode
 * numbers and where the sources live on the host cannot influence the result.
 * @throws GantryError SOURCE_UNREADABLE naming the host path that cannot be read;
 *         UnsafePathError for a name starting with `.wh.` (reserved for whiteouts).
 */
export async function walkSources(sources: readonly SourceSpec[], opts: WalkOptions = {}): Promise<SourceTree> {
  const state: WalkState = {
    tree: new SourceTree(),
    inodes: new Map(),
    signal: opts.signal,
    owners: opts.owners === true,
    fingerprint: opts.fingerprint === true,
    onFile: opts.onFile,
    onStat: opts.onStat,
  };
  const visit: EntryVisitor = (hostPath, imagePath, st, depth) => {
    state.onStat?.(hostPath, st, depth);
    addEntry(state, hostPath, imagePath, st);
  };
  for (const source of sources) {
    if (!isAbsolute(source.from)) {
      throw new SpecError(`the copyToRoot source ${JSON.stringify(source.from)} is not an absolute host path; resolve it against the spec file first`);
    }
    const to = cleanPath(source.to, "the copyToRoot destination");
    if (to.split("/").some(isWhiteoutName)) {
      throw new UnsafePathError(`the copyToRoot destination ${JSON.stringify(source.to)} has a name starting with ".wh.", which layers reserve for deletions; choose another path`);
    }
    const st = lstatOrThrow(source.from);
    state.onStat?.(source.from, st, 0);
    if (st.isDirectory()) {
      if (to !== "") state.tree.set(to, { type: "dir", mode: Number(st.mode) & 0o7777, size: 0 });
      visitDir(source.from, to, 1, visit, state.signal);
    } else {
      if (to === "") {
        throw new SpecError(`the copyToRoot source ${source.from} is not a directory and cannot be laid at "/"; give it a "to" path or use its directory`);
      }
      addEntry(state, source.from, to, st);
    }
  }
  dropReplacedFingerprints(state.tree);
  markHardlinkGroups(state);
  return state.tree;
}

function lstatOrThrow(hostPath: string): BigIntStats {
  try {
    return lstatSync(hostPath, { bigint: true });
  } catch (err) {
    throw sourceUnreadable(hostPath, err);
  }
}

/**
 * Every host entry of the sources, lstat only, in the order walkSources visits them (each
 * source's own path, then what is below it), with none of a tree's cost: what a snapshot
 * of unchanged sources needs. Throws as walkSources does for what it cannot read.
 */
export function statSources(sources: readonly SourceSpec[], onStat: StatVisitor, signal?: AbortSignal): void {
  for (const source of sources) statEntry(source.from, 0, onStat, signal);
}

/**
 * One host entry and, for a directory, everything below it, lstat only, in walk order; the
 * entry is told at `depth`. A part of statSources: a source's own path at depth 0, or one of
 * the names sourceChildNames lists at depth 1. Throws as walkSources does.
 */
export function statEntry(hostPath: string, depth: number, onStat: StatVisitor, signal?: AbortSignal): void {
  const st = lstatOrThrow(hostPath);
  onStat(hostPath, st, depth);
  if (st.isDirectory()) visitDir(hostPath, "", depth + 1, (path, _imagePath, entrySt, entryDepth) => onStat(path, entrySt, entryDepth), signal);
}

/** The names in directory `hostDir`, in walk order (byte order). Throws as walkSources does. */
export function sourceChildNames(hostDir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(hostDir);
  } catch (err) {
    throw sourceUnreadable(hostDir, err);
  }
  names.sort(comparePaths);
  for (const name of names) {
    if (isWhiteoutName(name)) {
      throw new UnsafePathError(`the source file ${childPath(hostDir, name)} has a name starting with ".wh.", which layers reserve for deletions; rename or remove it`);
    }
  }
  return names;
}

/** The host path of `name` in `hostDir`. */
export function childPath(hostDir: string, name: string): string {
  // hostDir is absolute and clean, and a name holds no "/": plain concatenation is join's answer, without its cost.
  return hostDir.endsWith("/") ? `${hostDir}${name}` : `${hostDir}/${name}`;
}

/** Told of one entry of a directory walk, before the walk descends into it. */
type EntryVisitor = (hostPath: string, imagePath: string, st: BigIntStats, depth: number) => void;

/**
 * One directory, depth first, names in byte order; a directory is visited, then walked.
 * Its entries are at `depth`. The calls are synchronous on purpose: the walk is the whole
 * of an unchanged rebuild, and a synchronous lstat costs a third of a promised one here.
 */
function visitDir(hostDir: string, imageDir: string, depth: number, visit: EntryVisitor, signal: AbortSignal | undefined): void {
  throwIfAborted(signal);
  for (const name of sourceChildNames(hostDir)) {
    const hostPath = childPath(hostDir, name);
    const imagePath = joinPath(imageDir, name);
    const st = lstatOrThrow(hostPath);
    visit(hostPath, imagePath, st, depth);
    if (st.isDirectory()) visitDir(hostPath, imagePath, depth + 1, visit, signal);
  }
}

/** Adds one walked entry (visitDir descends into a directory after). */
function addEntry(state: WalkState, hostPath: string, imagePath: string, st: BigIntStats): void {
  const walked = nodeOf(hostPath, st);
  if (walked === undefined) return;
  const node = state.owners ? { ...walked, uid: Number(st.uid), gid: Number(st.gid) } : walked;
  if (state.fingerprint) {
    if (node.type === "file") {
      const fingerprint = fingerprintOf(st);
      state.tree.fingerprints.set(imagePath, fingerprint);
      state.onFile?.(hostPath, node.size, fingerprint);
    } else {
      state.tree.fingerprints.delete(imagePath); // a later source put a non-file over a walked file
    }
  }
  // A later directory over an earlier one merges into it; anything else replaces.
  state.tree.set(imagePath, node);
  if (node.type === "file" && st.nlink > 1n) {
    const key = `${st.dev}:${st.ino}`;
    const members = state.inodes.get(key);
    if (members) members.push({ path: imagePath, node });
    else state.inodes.set(key, [{ path: imagePath, node }]);
  }
}

/**
 * Drops the fingerprints of files the overlay removed without adding anything at their path:
 * those below a directory a later non-directory replaced, and a file a later source's
 * deeper path turned into a directory. (A file replaced at its own path had its fingerprint
 * replaced or dropped as the new node was added.)
 */
function dropReplacedFingerprints(tree: SourceTree): void {
  for (const path of tree.fingerprints.keys()) {
    if (tree.get(path)?.type !== "file") tree.fingerprints.delete(path);
  }
}

/** Groups files sharing an inode, after the overlay (a later source may have replaced a member). */
function markHardlinkGroups(state: WalkState): void {
  for (const members of state.inodes.values()) {
    // A member counts only if no later source put something else at its path.
    const alive = members.filter((m) => state.tree.get(m.path) === m.node).map((m) => m.path);
    const paths = [...new Set(alive)].sort(comparePaths);
    const first = paths[0];
    if (first === undefined || paths.length < 2) continue;
    for (const p of paths) {
      const node = state.tree.get(p);
      if (node) state.tree.set(p, { ...node, hardlinkGroup: first });
    }
  }
}
