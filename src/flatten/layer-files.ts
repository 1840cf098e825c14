import { writeSync } from "node:fs";
import { drain, forEachLayerEntry, type TarEntry } from "../layer/layer-entries.js";
import { hasherDigest, newHasher, type Digest } from "../model/digest.js";
import { FormatError, UnsafePathError, throwIfAborted } from "../model/errors.js";
import type { Layer } from "../model/image.js";
import { cleanPath } from "../model/image-path.js";
import type { FileTree, TreeNode } from "../layer/tree.js";
import { classifyEntry, opaqueMarkerPathFor } from "../whiteout/index.js";
import type { LinkGroup, LinkPlan } from "./hardlinks.js";
import { SymlinkGuard } from "./symlink-guard.js";

/** Receives the bytes of the regular files that survive flattening. */
export interface FileContentSink {
  /**
   * Stores `content` as the file at image path `path`, with `node`'s mode, owner and
   * time, replacing an earlier write to the same path. Consumes `content` whole and
   * resolves with the digest of its bytes.
   */
  file(path: string, node: TreeNode, content: AsyncIterable<Buffer>): Promise<Digest>;
  /** Stores at `path` (with `node`'s attributes) the bytes just stored at `from`, whose digest is `digest`; resolves with it. */
  copy(from: string, path: string, node: TreeNode, digest: Digest): Promise<Digest>;
}

/**
 * Writes `content` to the open file `fd` while hashing it; what every sink's `file` does
 * with the bytes. The writes are synchronous on purpose: a flattened root is thousands
 * of small files, and a thread-pool round trip per write costs more than the write.
 */
export async function writeHashed(fd: number, content: AsyncIterable<Buffer>): Promise<Digest> {
  const hash = newHasher();
  for await (const chunk of content) {
    hash.update(chunk);
    for (let done = 0; done < chunk.length;) done += writeSync(fd, chunk, done, chunk.length - done);
  }
  return hasherDigest(hash);
}

function describeLayer(layers: readonly Layer[], index: number): string {
  return `layer ${index + 1} of ${layers.length} (${layers[index]?.diffId ?? "unknown"})`;
}

/**
 * Streams each layer once, base first, and hands `sink` the bytes of every regular file
 * that survives in `tree` (the layers' merged tree) plus the bytes orphan hardlinks need;
 * every other entry is drained unread. Nothing but file bytes leaves this function: the
 * rest of a flattened root comes from the tree. On the way it refuses, with an
 * UnsafePathError naming the layer and the entry, anything a runtime would let escape:
 * absolute names, paths and hardlink targets that reach through a symlink laid earlier.
 * (`..` beyond the root and whiteouts of `..` are refused by the path cleaner.)
 */
export async function streamSurvivingFiles(
  layers: readonly Layer[],
  tree: FileTree,
  links: LinkPlan,
  sink: FileContentSink,
  signal?: AbortSignal,
): Promise<void> {
  const guard = new SymlinkGuard();
  const materialized = new Set<LinkGroup>();
  for (const [index, layer] of layers.entries()) {
    throwIfAborted(signal);
    const layerName = describeLayer(layers, index);
    await forEachLayerEntry(layer, layerName, signal, async (entry) => {
      const destinations = checkEntry(entry, index, layerName, guard, tree, links, materialized);
      if (destinations.length === 0) return drain(entry);
      // Two places wanting one entry's bytes (a survivor and an orphan group) is rare
      // enough to copy from the first place written rather than buffer the bytes.
      let from: { path: string; digest: Digest } | undefined;
      for (const d of destinations) {
        const digest = from === undefined ? await sink.file(d.path, d.node, entry) : await sink.copy(from.path, d.path, d.node, from.digest);
        from ??= { path: d.path, digest };
        if (d.group?.orphan?.digest !== undefined && digest === d.group.orphan.digest) materialized.add(d.group);
      }
    });
  }
  for (const g of links.groups) {
    if (g.orphan && !materialized.has(g)) {
      throw new FormatError(`the hardlink ${JSON.stringify(g.holder)} points to ${JSON.stringify(g.orphan.target)}, which is not a regular file of its layer or a lower one; the image is malformed`);
    }
  }
}

/** One entry of tar-stream's extract: its header, and its body as an async iterable of chunks. */

interface Destination { path: string; node: TreeNode; group?: LinkGroup }

/** Applies the safety rules to one entry and says where its bytes must go (nowhere for most). */
function checkEntry(
  entry: TarEntry, index: number, layerName: string, guard: SymlinkGuard,
  tree: FileTree, links: LinkPlan, materialized: ReadonlySet<LinkGroup>,
): Destination[] {
  const h = entry.header;
  const refuse = (why: string): UnsafePathError =>
    new UnsafePathError(`${layerName} has the entry ${JSON.stringify(h.name)}, which ${why}; the layer is hostile or malformed, so it is not extracted`);
  if (h.name.startsWith("/")) throw refuse("has an absolute name");
  const meaning = classifyEntry(h.name, `an entry of ${layerName}`);
  if (meaning.kind === "whiteout" || meaning.kind === "opaque") {
    const reach = meaning.kind === "whiteout" ? meaning.deleted : opaqueMarkerPathFor(meaning.dir);
    const link = guard.linkAbove(reach);
    if (link !== undefined) throw refuse(`deletes through the symbolic link ${JSON.stringify(link)}`);
    if (meaning.kind === "whiteout") guard.whiteout(meaning.deleted, index);
    else guard.opaque(meaning.dir, index);
    return [];
  }
  if (meaning.kind === "meta" || meaning.path === "") return [];
  const path = meaning.path;
  const link = guard.linkAbove(path);
  if (link !== undefined) throw refuse(`goes through the symbolic link ${JSON.stringify(link)} laid before it`);
  const type = h.type ?? "file";
  if (type === "link") {
    const raw = h.linkname ?? "";
    if (raw.startsWith("/")) throw refuse(`is a hardlink to the absolute path ${JSON.stringify(raw)}`);
    const target = cleanPath(raw, `the hardlink target of ${JSON.stringify(h.name)} in ${layerName}`);
    const through = guard.linkAbove(target);
    if (through !== undefined) throw refuse(`is a hardlink to ${JSON.stringify(raw)}, through the symbolic link ${JSON.stringify(through)}`);
  }
  guard.laid(path, type === "directory", type === "symlink", index);
  if (type !== "file" && type !== "contiguous-file") return [];

  const out: Destination[] = [];
  const node = tree.get(path);
  if (node?.type === "file" && node.layerIndex === index) out.push({ path, node });
  for (const group of links.orphansByTarget.get(path) ?? []) {
    if (!materialized.has(group)) out.push({ path: group.holder, node: group.node, group });
  }
  return out;
}

