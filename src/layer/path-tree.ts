import { UnsafePathError } from "../model/errors.js";
import { ancestorsOf, comparePaths, parentPath } from "../model/image-path.js";

/** The kinds of file a layer can hold (a tar `link` entry is a "hardlink"). */
export type EntryType = "file" | "dir" | "symlink" | "hardlink" | "char" | "block" | "fifo";

/**
 * A file system tree held as a map from canonical path to node, with an index of each
 * directory's children. It keeps one invariant, the one a real file system has: every
 * node's parent exists and is a directory. Setting a path under a missing parent, or under
 * a non-directory, puts a directory there (made by `implicitDir`); putting a non-directory
 * where a directory was removes everything below it. The root "" is implicit and never stored.
 *
 * Both the merged tree of a base image and the walked sources are PathTrees; they differ
 * only in what their nodes carry.
 */
export abstract class PathTree<N extends { readonly type: EntryType }> {
  private readonly nodes = new Map<string, N>();
  /**
   * Each directory's children, made the first time something needs them (a deletion, a
   * listing) and kept up to date after: a walk or a load that only adds never pays for it.
   */
  private childIndex: Map<string, Set<string>> | undefined;
  private sortedPaths: string[] | undefined;

  /** The node to create for a missing or non-directory ancestor of `child`. */
  protected abstract implicitDir(child: N): N;

  get size(): number {
    return this.nodes.size;
  }

  get(path: string): N | undefined {
    return this.nodes.get(path);
  }

  has(path: string): boolean {
    return this.nodes.has(path);
  }

  set(path: string, node: N): void {
    if (path === "") throw new UnsafePathError("the image root cannot hold a node of its own; set paths below it");
    // A parent that is a directory has only directories above it (the invariant): walks and
    // loaders add children after their parents, so this is the common case.
    const parent = parentPath(path);
    if (parent !== "" && this.nodes.get(parent)?.type !== "dir") {
      for (const dir of ancestorsOf(path)) {
        const existing = this.nodes.get(dir);
        if (existing?.type !== "dir") this.put(dir, this.implicitDir(node));
      }
    }
    const existing = this.nodes.get(path);
    if (existing?.type === "dir" && node.type !== "dir") this.deleteTree(path);
    this.put(path, node);
  }

  /**
   * Removes `path` and everything below it; nothing happens if it is absent. The paths
   * below are visited with a list of their own, not the call stack: a layer can hold a path
   * tens of thousands of directories deep.
   */
  deleteTree(path: string): void {
    if (!this.nodes.has(path)) return;
    const children = this.children();
    const pending = [path];
    for (let p = pending.pop(); p !== undefined; p = pending.pop()) {
      const kids = children.get(p);
      if (kids) {
        for (const child of kids) pending.push(child);
        children.delete(p);
      }
      this.nodes.delete(p);
    }
    children.get(parentPath(path))?.delete(path);
    this.sortedPaths = undefined;
  }

  /** The full paths of `dir`'s direct children, in byte order ("" lists the top level). */
  childrenOf(dir: string): string[] {
    const kids = this.children().get(dir);
    return kids ? [...kids].sort(comparePaths) : [];
  }

  private children(): Map<string, Set<string>> {
    if (this.childIndex === undefined) {
      this.childIndex = new Map();
      for (const path of this.nodes.keys()) this.addChild(this.childIndex, path);
    }
    return this.childIndex;
  }

  private addChild(index: Map<string, Set<string>>, path: string): void {
    const parent = parentPath(path);
    const kids = index.get(parent);
    if (kids) kids.add(path);
    else index.set(parent, new Set([path]));
  }

  /** Every path in byte order: parents come before their children. */
  paths(): readonly string[] {
    this.sortedPaths ??= [...this.nodes.keys()].sort(comparePaths);
    return this.sortedPaths;
  }

  /** Every `[path, node]` in byte order of path. */
  *entries(): IterableIterator<[string, N]> {
    for (const path of this.paths()) {
      const node = this.nodes.get(path);
      if (node !== undefined) yield [path, node];
    }
  }

  /** Copies another tree's contents into this (empty) one; nodes are shared, so treat them as immutable. */
  protected copyFrom(other: PathTree<N>): void {
    for (const [path, node] of other.nodes) this.nodes.set(path, node);
    if (other.childIndex) this.childIndex = new Map([...other.childIndex].map(([dir, kids]) => [dir, new Set(kids)]));
    this.sortedPaths = other.sortedPaths;
  }

  private put(path: string, node: N): void {
    if (!this.nodes.has(path)) {
      if (this.childIndex) this.addChild(this.childIndex, path);
      this.sortedPaths = undefined;
    }
    this.nodes.set(path, node);
  }
}
