import type { Header } from "tar-stream";
import { drain, forEachLayerEntry, type TarEntry } from "./layer-entries.js";
import type { Layer } from "../model/image.js";
import { hasherDigest, newHasher } from "../model/digest.js";
import { FormatError } from "../model/errors.js";
import { classifyEntry } from "../whiteout/index.js";
import type { EntryType } from "./path-tree.js";
import { cleanPath } from "../model/image-path.js";
import type { FileTree, TreeNode } from "./tree.js";

/**
 * Applying one layer's tar to a merged tree: each entry becomes a node (regular files hashed
 * as they stream), whiteouts delete from the layers below, as the OCI spec says.
 */

export async function applyLayer(tree: FileTree, layer: Layer, index: number, layerName: string, signal: AbortSignal | undefined): Promise<void> {
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

