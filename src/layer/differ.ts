import type { Digest } from "../model/digest.js";
import { SpecError, throwIfAborted } from "../model/errors.js";
import { opaqueMarkerPathFor, whiteoutPathFor } from "../whiteout/index.js";
import { compileGlob } from "./glob.js";
import type { FileContent } from "./file-content.js";
import { hashFile } from "./hash-file.js";
import { mapLimited } from "../util/concurrency.js";
import type { EntryType } from "./path-tree.js";
import type { SourceNode, SourceTree } from "./sources.js";
import { comparePaths, parentPath } from "../model/image-path.js";
import { FileTree, type TreeNode } from "./tree.js";

/** A `perms` override: paths matching the glob `path` (see glob.ts) get these fields. */
export interface PermRule {
  path: string;
  mode?: number;
  uid?: number;
  gid?: number;
}

/**
 * How diffLayer makes a layer's entries. It throws a SpecError for an owner, mtime or perms value that
 * is not a whole number of 0 or more (a mode at most 0o7777), an AbortedError once `signal` fires.
 */
export interface DiffOptions {
  /** Owner of every new entry (a perms rule may override uid/gid). */
  uid: number;
  gid: number;
  /** The names written with `uid` and `gid`; an entry whose owner a perms rule sets gets no name. */
  uname: string;
  gname: string;
  /** Timestamp of every new entry, seconds since the epoch. */
  mtime: number;
  /**
   * Overrides, applied in order, each field a matching rule sets replacing the value
   * before it: later rules win, field by field (`{"/**", mode}` then `{"/app/**", uid}`
   * gives everything the mode and app's files also the uid).
   */
  perms: readonly PermRule[];
  /**
   * Whether the source is a whole root file system (runAsRoot): base paths missing from it
   * become whiteouts, and symlinks of the base are not followed (the source has its own).
   * When false (copyToRoot) the source only adds and replaces.
   */
  deletions: boolean;
  /** The content digests already known (a layer key's), by host path: those files are not read again. */
  knownDigests?: ReadonlyMap<string, Digest> | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * All a copyToRoot comparison (no `deletions`) asks of the tree below: a FileTree, or a
 * record of its answers (below-tree.ts).
 */
export interface LowerLookups {
  get(path: string): TreeNode | undefined;
  resolveDir(path: string): string;
  isLinkToDir(path: string): boolean;
}

/** One entry of a new layer, ready for the tar writer. */
export interface LayerEntry {
  /** Canonical path, no leading slash. */
  path: string;
  type: EntryType;
  /** Permission bits, 0o7777. */
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  /** Seconds since the epoch. */
  mtime: number;
  /** Bytes of a regular file's content; 0 for every other type (and for whiteouts). */
  size: number;
  /** Symlink target verbatim, or the path of the entry a hardlink points to. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Where a regular file's `size` bytes come from (absent for empty whiteout files). */
  content?: FileContent;
}

/** A source node and the image path it will occupy. */
interface Placement {
  sourcePath: string;
  target: string;
  node: SourceNode;
  entry: LayerEntry;
}

/** How many source files are hashed at once when their size matches a base file's. */
const HASH_CONCURRENCY = 4;

/**
 * The entries of the layer that turns `base` into `base` + `source`: only what differs.
 *
 * - A source path whose type, mode, owner, content and link target equal the base's is
 *   left out (sizes are compared first; a file is hashed only when they match). mtime is
 *   not compared: it is ours to set, not the user's.
 * - A directory the base has is stored again only when its mode or owner changes; a
 *   directory made up to hold a source's `to` only when the base lacks it.
 * - Without `deletions`, a source path under a base symlink to a directory is stored under
 *   the link's target (`lib/x` → `usr/lib/x` for `lib -> usr/lib`), and a source directory
 *   at the link's own place is not stored (it would replace the link). Should two source
 *   paths land on one image path, the one that was not rerouted wins.
 * - An entry of another type than the base's replaces it; a non-directory over a base
 *   directory needs no whiteouts, because runtimes remove the directory with all its
 *   children when a layer puts a non-directory there.
 * - With `deletions`, each top-most base path missing from the source gets a `.wh.` entry.
 *   A directory all of whose base children are gone and that holds new ones ("emptied and
 *   refilled") gets the opaque marker instead of one whiteout per old child.
 * - Files sharing an inode: if any is stored, all are; the first in path order is the
 *   file, the others hardlinks to it, all with the first's mode and owner.
 *
 * Entries come out sorted by path in byte order, each path once, parents first.
 */
export async function diffLayer(base: FileTree | LowerLookups, source: SourceTree, opts: DiffOptions): Promise<LayerEntry[]> {
  checkOptions(opts);
  // Whiteouts list what the base has; only a whole tree can say.
  if (opts.deletions && !(base instanceof FileTree)) throw new Error("a comparison with deletions needs the whole tree below");
  const attributes = attributeRules(opts);
  const placements = place(base, source, opts, attributes);

  const stored: Placement[] = [];
  const toHash: Array<{ p: Placement; expected: Digest }> = [];
  for (const p of placements) {
    const verdict = compare(p, base.get(p.target));
    if (verdict === "different") stored.push(p);
    else if (typeof verdict === "object") {
      const known = p.node.hostPath === undefined ? undefined : opts.knownDigests?.get(p.node.hostPath);
      if (known === undefined) toHash.push({ p, expected: verdict.hashMustEqual });
      else if (known !== verdict.hashMustEqual) stored.push(p);
    }
  }
  const hashed = await mapLimited(toHash, HASH_CONCURRENCY, async ({ p, expected }) => {
    throwIfAborted(opts.signal);
    return (await hashFile(p.node.hostPath ?? "", opts.signal)) === expected ? undefined : p;
  });
  for (const p of hashed) if (p !== undefined) stored.push(p);

  const entries = linkHardlinkGroups(stored, placements);
  if (opts.deletions) entries.push(...deletionEntries(base as FileTree, source, opts));
  return entries.sort((a, b) => comparePaths(a.path, b.path));
}

function checkOptions(opts: DiffOptions): void {
  const isId = (n: number): boolean => Number.isSafeInteger(n) && n >= 0;
  if (!isId(opts.uid) || !isId(opts.gid)) throw new SpecError(`the layer owner uid ${opts.uid} / gid ${opts.gid} must be whole numbers of 0 or more`);
  if (!isId(opts.mtime)) throw new SpecError(`the layer mtime ${opts.mtime} must be whole seconds since 1970, 0 or more`);
  for (const rule of opts.perms) {
    if (rule.mode !== undefined && !(Number.isInteger(rule.mode) && rule.mode >= 0 && rule.mode <= 0o7777)) {
      throw new SpecError(`the perms mode ${rule.mode} for ${JSON.stringify(rule.path)} is not a permission mode; give an octal string such as "0755"`);
    }
    if ((rule.uid !== undefined && !isId(rule.uid)) || (rule.gid !== undefined && !isId(rule.gid))) {
      throw new SpecError(`the perms owner for ${JSON.stringify(rule.path)} must be whole numbers of 0 or more`);
    }
  }
}

type Attributes = (sourcePath: string, target: string, node: SourceNode) => Pick<LayerEntry, "mode" | "uid" | "gid" | "uname" | "gname">;

/** Mode from the source, owner from the source when the walk kept owners (runAsRoot) else from the options, then every matching perms rule in order. */
function attributeRules(opts: DiffOptions): Attributes {
  const rules = opts.perms.map((rule) => ({ ...rule, matches: compileGlob(rule.path) }));
  return (sourcePath, target, node) => {
    // Linux ignores a symlink's permission bits; tar and docker write 0777.
    let mode = node.type === "symlink" ? 0o777 : node.mode;
    let uid = node.uid ?? opts.uid;
    let gid = node.gid ?? opts.gid;
    for (const rule of rules) {
      if (!rule.matches(sourcePath) && !rule.matches(target)) continue;
      if (rule.mode !== undefined && node.type !== "symlink") mode = rule.mode;
      if (rule.uid !== undefined) uid = rule.uid;
      if (rule.gid !== undefined) gid = rule.gid;
    }
    // A name belongs to the id it was given for; an overridden id gets no name rather than a wrong one.
    return { mode, uid, gid, uname: uid === opts.uid ? opts.uname : "", gname: gid === opts.gid ? opts.gname : "" };
  };
}

/** Decides where each source node goes in the image, rerouting under base symlinks (copyToRoot only). */
function place(base: LowerLookups, source: SourceTree, opts: DiffOptions, attributes: Attributes): Placement[] {
  const placements: Placement[] = [];
  let rerouted = false;
  for (const [sourcePath, node] of source.entries()) {
    const target = opts.deletions ? sourcePath : base.resolveDir(sourcePath);
    if (!opts.deletions && node.type === "dir" && base.isLinkToDir(target)) continue;
    if (target !== sourcePath) rerouted = true;
    placements.push({ sourcePath, target, node, entry: entryOf(target, node, attributes(sourcePath, target, node), opts.mtime) });
  }
  // Source paths are distinct: two can share a target only if one was rerouted.
  return rerouted ? oneForEachTarget(placements) : placements;
}

/**
 * One placement per target, in the order the targets first came: the one that was not
 * rerouted wins, else the later.
 */
function oneForEachTarget(placements: readonly Placement[]): Placement[] {
  const byTarget = new Map<string, Placement>();
  for (const p of placements) {
    const earlier = byTarget.get(p.target);
    if (earlier !== undefined && earlier.sourcePath === earlier.target && p.sourcePath !== p.target) continue;
    byTarget.set(p.target, p);
  }
  return [...byTarget.values()];
}

/**
 * The entry a source node makes at `target`. A file's is made with all its fields at once: a
 * field added to an object after it was made goes into a second allocation, and for 100,000
 * files that, with a map of placements by target, was most of the comparison's time.
 */
function entryOf(target: string, node: SourceNode, a: ReturnType<Attributes>, mtime: number): LayerEntry {
  if (node.type === "file" && node.hostPath !== undefined) {
    return {
      path: target, type: "file", mode: a.mode, uid: a.uid, gid: a.gid, uname: a.uname, gname: a.gname, mtime, size: node.size,
      content: { kind: "hostFile", path: node.hostPath },
    };
  }
  const entry: LayerEntry = {
    path: target, type: node.type, mode: a.mode, uid: a.uid, gid: a.gid, uname: a.uname, gname: a.gname, mtime,
    size: node.type === "file" ? node.size : 0,
  };
  if (node.linkname !== undefined) entry.linkname = node.linkname;
  if (node.devmajor !== undefined) entry.devmajor = node.devmajor;
  if (node.devminor !== undefined) entry.devminor = node.devminor;
  return entry;
}

/** "different", "same", or the digest the source file must hash to for "same". */
function compare(p: Placement, old: TreeNode | undefined): "different" | "same" | { hashMustEqual: Digest } {
  if (old === undefined) return "different";
  const { entry, node } = p;
  const oldType = old.type === "hardlink" ? "file" : old.type;
  if (node.synthetic) return oldType === "dir" ? "same" : "different";
  if (entry.type !== oldType || entry.uid !== old.uid || entry.gid !== old.gid) return "different";
  switch (entry.type) {
    case "symlink":
      return entry.linkname === old.linkname ? "same" : "different";
    case "char":
    case "block":
      if (entry.devmajor !== old.devmajor || entry.devminor !== old.devminor) return "different";
      return entry.mode === old.mode ? "same" : "different";
    case "file":
      if (entry.mode !== old.mode || entry.size !== old.size || old.contentDigest === undefined) return "different";
      return { hashMustEqual: old.contentDigest };
    default:
      return entry.mode === old.mode ? "same" : "different";
  }
}

/**
 * Stores whole hardlink groups: a group with any stored member is stored entirely, its
 * first member (path order) as the file and the rest as links to it.
 */
function linkHardlinkGroups(stored: readonly Placement[], all: readonly Placement[]): LayerEntry[] {
  const storedGroups = new Set<string>();
  for (const p of stored) if (p.node.hardlinkGroup !== undefined) storedGroups.add(p.node.hardlinkGroup);
  const out: LayerEntry[] = stored.filter((p) => p.node.hardlinkGroup === undefined).map((p) => p.entry);
  if (storedGroups.size === 0) return out;

  const members = new Map<string, Placement[]>();
  for (const p of all) {
    const group = p.node.hardlinkGroup;
    if (group === undefined || !storedGroups.has(group)) continue;
    const list = members.get(group);
    if (list) list.push(p);
    else members.set(group, [p]);
  }
  for (const list of members.values()) {
    list.sort((a, b) => comparePaths(a.target, b.target));
    const [first, ...rest] = list;
    if (first === undefined) continue;
    out.push(first.entry);
    for (const p of rest) {
      const { content: _content, ...shape } = first.entry;
      out.push({ ...shape, path: p.target, type: "hardlink", size: 0, linkname: first.target });
    }
  }
  return out;
}

/**
 * Whiteouts for base paths the source no longer has: one per top-most deleted path (a
 * deleted directory's children go with it), or one opaque marker for a directory emptied
 * and refilled. A base path under a source non-directory needs none: that entry replaces it.
 */
function deletionEntries(base: FileTree, source: SourceTree, opts: DiffOptions): LayerEntry[] {
  const goneByDir = new Map<string, string[]>();
  for (const path of base.paths()) {
    if (source.has(path)) continue;
    const dir = parentPath(path);
    if (dir !== "" && source.get(dir)?.type !== "dir") continue;
    const list = goneByDir.get(dir);
    if (list) list.push(path);
    else goneByDir.set(dir, [path]);
  }
  const marker = (path: string): LayerEntry => ({
    path, type: "file", mode: 0, uid: opts.uid, gid: opts.gid, uname: opts.uname, gname: opts.gname, mtime: opts.mtime, size: 0,
  });
  const out: LayerEntry[] = [];
  for (const [dir, gone] of goneByDir) {
    const emptiedAndRefilled = gone.length === base.childrenOf(dir).length && source.childrenOf(dir).length > 0;
    if (emptiedAndRefilled) out.push(marker(opaqueMarkerPathFor(dir)));
    else for (const path of gone) out.push(marker(whiteoutPathFor(path)));
  }
  return out;
}
