import type { Digest } from "../model/digest.js";
import { PathTree, type EntryType } from "./path-tree.js";
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

  /**
   * Returns whether anything of `layerIndex` (or above) survives at or below `path`. Each
   * path is decided once its children are, depth first, with a stack of its own rather than
   * the call stack: a whiteout can sit above a path 20,000 directories deep.
   */
  private removeLower(path: string, layerIndex: number): boolean {
    if (this.get(path) === undefined) return false;
    const visit = (p: string): Visit => ({ path: p, children: this.childrenOf(p), next: 0, survivors: false });
    const stack = [visit(path)];
    let survived = false;
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const child = top.children[top.next++];
      if (child !== undefined) {
        stack.push(visit(child));
        continue;
      }
      stack.pop();
      const kept = this.decideLower(top.path, top.survivors, layerIndex);
      const parent = stack[stack.length - 1];
      if (parent === undefined) survived = kept;
      else if (kept) parent.survivors = true;
    }
    return survived;
  }

  /**
   * Decides one path once its children are decided: what `layerIndex` (or above) put there
   * stays; a lower directory holding survivors becomes the directory a runtime would create
   * for them; anything else goes. Returns whether something survives at or below it.
   */
  private decideLower(path: string, survivors: boolean, layerIndex: number): boolean {
    const node = this.get(path)!;
    if (node.layerIndex >= layerIndex) return true;
    if (survivors) this.set(path, this.implicitDir({ ...node, layerIndex }));
    else this.deleteTree(path);
    return survivors;
  }
}

/** A path being visited by `removeLower`: its children, the next to visit, and whether any survived. */
interface Visit {
  path: string;
  children: string[];
  next: number;
  survivors: boolean;
}
