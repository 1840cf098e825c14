import { throwIfAborted } from "../model/errors.js";
import type { Image } from "../model/image.js";
import type { ProgressListener } from "../model/progress.js";
import { sharedMergedTree } from "../layer/merged-tree.js";
import type { FileTree, TreeNode } from "../layer/tree.js";
import { accessOf, type AccessOptions } from "../transports/transport.js";
import { readImageFor } from "./source.js";

/** What `diffImages` compares: two image references, read through any transport. */
export interface DiffOptions extends AccessOptions {
  /** The image compared from (any readable reference). */
  a: string;
  /** The image compared to. */
  b: string;
  onProgress?: ProgressListener;
  /** `os/arch[/variant]` of multi-platform images; the host's by default. */
  platform?: string;
}

/** What differs at one path present in both images. */
export type ChangedAttribute = "type" | "content" | "mode" | "owner" | "link" | "device" | "mtime";

/** How B's merged file system differs from A's (whiteouts applied, as a container sees them). */
export interface DiffResult {
  /** Paths in B only, in byte order. */
  added: string[];
  /** Paths in A only. */
  removed: string[];
  /** Paths in both that differ, with what differs. */
  changed: { path: string; attributes: ChangedAttribute[] }[];
}

/**
 * Files added, removed and changed between the merged root file systems of two images
 * (whiteouts applied; nothing is unpacked: contents are compared by digest).
 * Paths are image paths without the leading slash, as in the layers.
 */
export async function diffImages(opts: DiffOptions): Promise<DiffResult> {
  const progress = opts.onProgress ?? (() => {});
  const [a, b] = [await open(opts.a, opts), await open(opts.b, opts)];
  progress({ step: "diff", message: `reading ${a.layers.length} layer(s) of ${opts.a}` });
  const treeA = await sharedMergedTree(a.layers, opts.signal ? { signal: opts.signal } : {});
  throwIfAborted(opts.signal);
  progress({ step: "diff", message: `reading ${b.layers.length} layer(s) of ${opts.b}` });
  const treeB = await sharedMergedTree(b.layers, opts.signal ? { signal: opts.signal } : {});
  return compareTrees(treeA, treeB);
}

async function open(ref: string, opts: DiffOptions): Promise<Image> {
  return readImageFor(ref, { ...accessOf(opts), ...(opts.platform !== undefined ? { platform: opts.platform } : {}) });
}

/** How merged tree `b` differs from merged tree `a` (see DiffResult); contents are compared by digest and size. */
export function compareTrees(a: FileTree, b: FileTree): DiffResult {
  const result: DiffResult = { added: [], removed: [], changed: [] };
  for (const [path, nodeA] of a.entries()) {
    const nodeB = b.get(path);
    if (nodeB === undefined) result.removed.push(path);
    else {
      const attributes = differences(nodeA, nodeB);
      if (attributes.length > 0) result.changed.push({ path, attributes });
    }
  }
  for (const [path] of b.entries()) if (!a.has(path)) result.added.push(path);
  return result;
}

function differences(a: TreeNode, b: TreeNode): ChangedAttribute[] {
  if (a.type !== b.type) return ["type"];
  const out: ChangedAttribute[] = [];
  if (a.contentDigest !== b.contentDigest || a.size !== b.size) out.push("content");
  if (a.mode !== b.mode) out.push("mode");
  if (a.uid !== b.uid || a.gid !== b.gid) out.push("owner");
  if (a.linkname !== b.linkname) out.push("link");
  if (a.devmajor !== b.devmajor || a.devminor !== b.devminor) out.push("device");
  if (a.mtime !== b.mtime) out.push("mtime");
  return out;
}
