import type { Header } from "tar-stream";
import { drain, forEachLayerEntry, type TarEntry } from "./layer-entries.js";
import type { Layer } from "../model/image.js";
import { hasherDigest, newHasher, type Digest } from "../model/digest.js";
import { FormatError, GantryError, throwIfAborted } from "../model/errors.js";
import { classifyEntry } from "../whiteout/index.js";
import { PathTree, type EntryType } from "./path-tree.js";
import { cleanPath } from "../model/image-path.js";
import { resolveLinks, type FollowRules, type RootEntry, type RootView } from "../model/root-resolve.js";

/** What the merged tree knows of one path of an image's root file system. */
export interface TreeNode {
  type: EntryType;
  /** Permission bits, 0o7777. */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of a regular file (a hardlink carries its target's size); 0 otherwise. */
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** Symlink target as written (may be relative or absolute), or a hardlink's canonical target path. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** sha256 of a regular file's bytes (a hardlink carries its target's). */
  contentDigest?: Digest;
  /** Index in the image's layer list of the layer that supplied this node. */
  layerIndex: number;
}

/**
 * Where a runtime extracting a layer puts a file: through parent links that lead to
 * directories, with the image root as a chroot.
 */
const LAYING_UNDER_LINKS: FollowRules = { followLast: false, follow: "dirs", confine: "clamp" };
/** The same, the last component followed too: where a link to a directory lands. */
const LANDING_OF_DIR_LINK: FollowRules = { ...LAYING_UNDER_LINKS, followLast: true };

const DIR_ENTRY: RootEntry = { kind: "dir" };
const OTHER_ENTRY: RootEntry = { kind: "other" };

/**
 * A tree node as the link resolver sees it. A hardlink node is a file of its own (it
 * shares its target's inode, and the tree has already copied the target's attributes),
 * so it is not a link to follow.
 */
function asRootEntry(node: TreeNode | undefined): RootEntry | undefined {
  if (node === undefined) return undefined;
  if (node.type === "dir") return DIR_ENTRY;
  if (node.type === "symlink" && node.linkname !== undefined) return { kind: "symlink", target: node.linkname };
  return OTHER_ENTRY;
}

/**
 * The merged root file system of an image, as an index (nothing is unpacked):
 * path → type, mode, owner, size, link target, content digest and supplying layer.
 */
export class FileTree extends PathTree<TreeNode> {
  /** The tree as the link resolver sees it (the only trees resolved are base images). */
  private readonly view: RootView = {
    name: "the base image",
    lookup: (path) => asRootEntry(this.get(path)),
  };

  protected implicitDir(child: TreeNode): TreeNode {
    // What a runtime's MkdirAll would create for an entry whose parents a layer omitted.
    return { type: "dir", mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0, layerIndex: child.layerIndex };
  }

  /** An independent copy (nodes are shared and must not be mutated in place). */
  clone(): FileTree {
    const copy = new FileTree();
    copy.copyFrom(this);
    return copy;
  }

  /**
   * The real path `path` names once symlinks in its parent chain are followed, so that a
   * file laid at `lib/foo` lands in `usr/lib/foo` when `lib -> usr/lib` (or `/usr/lib`).
   * The last component is not followed: the caller means that name itself. A link is
   * followed only when it leads to a directory; a dangling link or one to a non-directory
   * stays in the path as written. Link targets, relative or absolute, are confined to the
   * image root (`..` at the root stays at the root), as inside a chroot.
   * @throws UnsafePathError after more than 40 links in one lookup.
   */
  resolveDir(path: string): string {
    return resolveLinks(this.view, path, LAYING_UNDER_LINKS);
  }

  /** Whether `path` is a symlink that leads (through any number of links) to a directory. */
  isLinkToDir(path: string): boolean {
    if (this.get(path)?.type !== "symlink") return false;
    const landed = resolveLinks(this.view, path, LANDING_OF_DIR_LINK);
    return landed === "" || this.get(landed)?.type === "dir";
  }

  /**
   * Applies a whiteout of `path` found in layer `layerIndex`: removes what lower layers
   * put at and below `path`. What `layerIndex` itself put there survives (OCI: a whiteout
   * hides lower layers only); a lower directory that still holds such survivors becomes
   * the directory a runtime would create for them.
   */
  deleteLower(path: string, layerIndex: number): void {
    this.removeLower(path, layerIndex);
  }

  /** Applies an opaque marker of `dir` found in layer `layerIndex`: hides every lower child. */
  hideLowerChildren(dir: string, layerIndex: number): void {
    for (const child of this.childrenOf(dir)) this.removeLower(child, layerIndex);
  }

  /** Returns whether anything of `layerIndex` (or above) survives at or below `path`. */
  private removeLower(path: string, layerIndex: number): boolean {
    const node = this.get(path);
    if (node === undefined) return false;
    let survivors = false;
    for (const child of this.childrenOf(path)) {
      if (this.removeLower(child, layerIndex)) survivors = true;
    }
    if (node.layerIndex >= layerIndex) return true;
    if (survivors) this.set(path, this.implicitDir({ ...node, layerIndex }));
    else this.deleteTree(path);
    return survivors;
  }
}

/** Merged trees by layer chain (diffIds joined), so a base used twice in a process is read once. */
const chainCache = new Map<string, Promise<FileTree>>();
const CHAIN_CACHE_LIMIT = 8;

function chainKey(layers: readonly Layer[], count: number): string {
  return layers.slice(0, count).map((l) => l.diffId).join(",");
}

/**
 * The merged root file system of `layers` (base first), whiteouts applied in layer order.
 * Each layer's tar is streamed once; regular files are hashed on the fly. The result is
 * memoized per chain of diffIds, and a longer chain starts from a memoized prefix; the
 * caller gets its own copy and may change it.
 */
export async function mergedTree(layers: readonly Layer[], opts: { signal?: AbortSignal | undefined } = {}): Promise<FileTree> {
  const key = chainKey(layers, layers.length);
  for (;;) {
    let pending = chainCache.get(key);
    if (pending === undefined) {
      pending = buildChain(layers, opts.signal);
      remember(key, pending);
    }
    try {
      return (await pending).clone();
    } catch (err) {
      // Someone else's abort must not fail this caller: build again under our own signal.
      const othersAbort = err instanceof GantryError && err.code === "ABORTED" && !opts.signal?.aborted;
      if (!othersAbort) throw err;
    }
  }
}

function remember(key: string, tree: Promise<FileTree>): void {
  chainCache.delete(key);
  chainCache.set(key, tree);
  tree.catch(() => { if (chainCache.get(key) === tree) chainCache.delete(key); });
  while (chainCache.size > CHAIN_CACHE_LIMIT) {
    const oldest = chainCache.keys().next().value;
    if (oldest === undefined) break;
    chainCache.delete(oldest);
  }
}

async function buildChain(layers: readonly Layer[], signal: AbortSignal | undefined): Promise<FileTree> {
  let start = 0;
  let tree = new FileTree();
  for (let k = layers.length - 1; k > 0; k--) {
    const prefix = chainCache.get(chainKey(layers, k));
    if (prefix === undefined) continue;
    try {
      tree = (await prefix).clone();
      start = k;
    } catch {
      // A failed prefix is simply not reused.
    }
    break;
  }
  for (let i = start; i < layers.length; i++) {
    const layer = layers[i];
    if (layer === undefined) continue;
    throwIfAborted(signal);
    await applyLayer(tree, layer, i, `layer ${i + 1} of ${layers.length} (${layer.diffId})`, signal);
  }
  return tree;
}

async function applyLayer(tree: FileTree, layer: Layer, index: number, layerName: string, signal: AbortSignal | undefined): Promise<void> {
  await forEachLayerEntry(layer, layerName, signal, (entry) => applyEntry(tree, entry, index, layerName));
}

const TAR_TYPES: Partial<Record<string, EntryType>> = {
  "file": "file",
  "contiguous-file": "file",
  "link": "hardlink",
  "symlink": "symlink",
  "directory": "dir",
  "character-device": "char",
  "block-device": "block",
  "fifo": "fifo",
};

/** tar-stream decodes ustar fields but leaves PAX overrides of owner and time in `pax`. */
function paxNumber(header: Header, key: string, fallback: number): number {
  const raw = (header.pax as Record<string, string> | null | undefined)?.[key];
  const n = raw === undefined ? NaN : Math.floor(Number(raw));
  return Number.isFinite(n) ? n : fallback;
}

async function applyEntry(tree: FileTree, entry: TarEntry, layerIndex: number, layerName: string): Promise<void> {
  const h = entry.header;
  const what = `an entry of ${layerName}`;
  const meaning = classifyEntry(h.name, what);
  if (meaning.kind !== "plain" || meaning.path === "") {
    await drain(entry);
    if (meaning.kind === "whiteout") tree.deleteLower(meaning.deleted, layerIndex);
    else if (meaning.kind === "opaque") tree.hideLowerChildren(meaning.dir, layerIndex);
    return;
  }
  const type = TAR_TYPES[h.type ?? "file"];
  if (type === undefined) {
    await drain(entry);
    throw new FormatError(`${JSON.stringify(h.name)} in ${layerName} has tar entry type ${String(h.type)}, which container layers do not use; the layer is malformed`);
  }
  const node: TreeNode = {
    type,
    mode: (h.mode ?? 0) & 0o7777,
    uid: paxNumber(h, "uid", h.uid ?? 0),
    gid: paxNumber(h, "gid", h.gid ?? 0),
    size: 0,
    mtime: paxNumber(h, "mtime", Math.floor((h.mtime?.getTime() ?? 0) / 1000)),
    layerIndex,
  };
  if (type === "file") {
    const hash = newHasher();
    let size = 0;
    for await (const chunk of entry as AsyncIterable<Buffer>) {
      hash.update(chunk);
      size += chunk.length;
    }
    node.size = size;
    node.contentDigest = hasherDigest(hash);
  } else {
    await drain(entry);
  }
  if (type === "symlink") node.linkname = h.linkname ?? "";
  if (type === "hardlink") linkToTarget(tree, node, cleanPath(h.linkname ?? "", `the hardlink target of ${JSON.stringify(h.name)} in ${layerName}`));
  if (type === "char" || type === "block") {
    node.devmajor = h.devmajor ?? 0;
    node.devminor = h.devminor ?? 0;
  }
  tree.set(meaning.path, node);
}

/** A hardlink shares its target's inode: it takes the target's content, size, mode and owner. */
function linkToTarget(tree: FileTree, node: TreeNode, target: string): void {
  node.linkname = target;
  const t = tree.get(target);
  if (t === undefined || (t.type !== "file" && t.type !== "hardlink")) return;
  node.size = t.size;
  node.mode = t.mode;
  node.uid = t.uid;
  node.gid = t.gid;
  if (t.contentDigest !== undefined) node.contentDigest = t.contentDigest;
}

