import { counting, fileWriter } from "../util/io.js";
import { byteMeter, type ByteMeter, type ProgressListener } from "../model/progress.js";
import { mkdir, stat, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ArchiveEntry } from "../archive/archive-tar.js";
import { digestHex, type Digest } from "../model/digest.js";
import { DigestMismatchError, FormatError, InvalidReferenceError, throwIfAborted } from "../model/errors.js";
import type { ImageOrIndex } from "../model/image.js";
import { MediaType } from "../model/mediatypes.js";
import type { Descriptor, IndexJson } from "../model/oci.js";
import { parseRepoTag, type RepoTag } from "./image-name.js";
import type { WriteItem } from "./transport.js";
import { ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, OCI_INDEX_FILE, OCI_LAYOUT_FILE, blobPath } from "./oci/names.js";

/**
 * What an OCI image layout holds for a list of images and indexes, computed before a byte
 * is written: every blob once (layers, configs, manifests, indexes and their children, by
 * digest), the index entries, and each item's names. Manifests are written as the items
 * hold them, so their digests do not change. The docker-archive writer, the OCI archive
 * writer and the OCI directory writer all lay out this one plan.
 */

/** One blob of a layout plan, written at `blobs/sha256/HEX`; it has either `bytes` or `open`, and `what` names it in errors. */
export interface PlannedBlob {
  readonly digest: Digest;
  readonly size: number;
  /** Small blobs (configs, manifests) are in memory; layers are opened (and verified) on demand. */
  readonly bytes?: Buffer;
  readonly open?: (signal?: AbortSignal) => Promise<Readable>;
  readonly what: string;
  /** A layer: an archive holds the layers first, in image order (archive/assembly.ts). */
  readonly layer?: boolean;
}

/** One item of a plan: its document, and its names parsed. */
export interface PlannedItem {
  readonly doc: ImageOrIndex;
  readonly tags: readonly RepoTag[];
}

/** A layout computed by planLayout: its blobs, its index.json entries, and the items it holds. */
export interface LayoutPlan {
  /** Unique by digest: the layers in the order the items first hold them, then the other blobs sorted by digest. */
  readonly blobs: readonly PlannedBlob[];
  /** index.json entries: one per item and tag, in the order given. */
  readonly index: readonly Descriptor[];
  readonly items: readonly PlannedItem[];
}

/** How planLayout names the items in index.json. */
export interface PlanOptions {
  /**
   * An explicit `org.opencontainers.image.ref.name` (oci:DIR:REF) for the one item
   * written; otherwise each tag gets docker's annotations (full name and tag).
   */
  refName?: string | undefined;
  signal?: AbortSignal | undefined;
}

/** Indexes of indexes deeper than this are malformed (real ones nest once). */
const MAX_DEPTH = 4;

/** The `oci-layout` file every layout holds. */
export const OCI_LAYOUT_BYTES = Buffer.from(JSON.stringify({ imageLayoutVersion: "1.0.0" }));

function indexEntry(doc: ImageOrIndex, annotations?: Record<string, string>): Descriptor {
  const d: Descriptor = { mediaType: doc.mediaType, digest: doc.digest, size: doc.manifestBytes.length };
  if (annotations) d.annotations = annotations;
  return d;
}

class BlobSet {
  private readonly blobs = new Map<Digest, PlannedBlob>();

  add(blob: PlannedBlob): void {
    const seen = this.blobs.get(blob.digest);
    if (seen && seen.size !== blob.size) {
      throw new DigestMismatchError(`${blob.what} and ${seen.what} share the digest ${blob.digest} but differ in size (${blob.size} and ${seen.size} bytes)`);
    }
    if (!seen) this.blobs.set(blob.digest, blob);
  }

  /** The layers as first added, then the rest by digest. */
  ordered(): PlannedBlob[] {
    const all = [...this.blobs.values()];
    return [...all.filter((b) => b.layer === true), ...all.filter((b) => b.layer !== true).sort((a, b) => (digestHex(a.digest) < digestHex(b.digest) ? -1 : 1))];
  }
}

/** Every blob of a document: an image's layers, config and manifest; an index and all it holds. */
async function addDocument(set: BlobSet, doc: ImageOrIndex, what: string, depth: number, signal: AbortSignal | undefined): Promise<void> {
  throwIfAborted(signal);
  set.add({ digest: doc.digest, size: doc.manifestBytes.length, bytes: doc.manifestBytes, what: `the ${doc.kind === "index" ? "index" : "manifest"} of ${what}` });
  if (doc.kind === "image") {
    for (const [n, layer] of doc.layers.entries()) {
      set.add({ digest: layer.digest, size: layer.size, open: (s) => layer.open(s), what: `layer ${n + 1} of ${what} (${layer.digest})`, layer: true });
    }
    set.add({ digest: doc.configDigest, size: doc.configBytes.length, bytes: doc.configBytes, what: `the config of ${what}` });
    return;
  }
  if (depth >= MAX_DEPTH) throw new FormatError(`the indexes of ${what} nest deeper than ${MAX_DEPTH}; the index is malformed`);
  for (const desc of doc.manifests) {
    await addDocument(set, await doc.child(desc, signal), `${what}, entry ${desc.digest}`, depth + 1, signal);
  }
}

/**
 * Plans the layout of `items`, as described above. Throws FormatError for no item or indexes nested too
 * deep, InvalidReferenceError for a tag given to two items or a refName with several, DigestMismatchError
 * for two blobs of one digest and different sizes.
 */
export async function planLayout(items: readonly WriteItem[], opts: PlanOptions = {}): Promise<LayoutPlan> {
  if (items.length === 0) throw new FormatError("an image archive or layout must hold at least one image; none was given");
  if (opts.refName !== undefined && items.length !== 1) {
    throw new InvalidReferenceError(`the reference name "${opts.refName}" can name one image, but ${items.length} were given`);
  }
  const blobs = new BlobSet();
  const taggedBy = new Map<string, number>();
  const index: Descriptor[] = [];
  const planned: PlannedItem[] = [];
  for (const [i, { doc, repoTags }] of items.entries()) {
    const tags = repoTags.map((t) => parseRepoTag(t, `the tag of image ${i + 1}`));
    for (const tag of tags) {
      const other = taggedBy.get(tag.full);
      if (other !== undefined && other !== i) throw new InvalidReferenceError(`the tag ${tag.familiar} is given to two images (${other + 1} and ${i + 1}); give each tag to one image`);
      taggedBy.set(tag.full, i);
    }
    await addDocument(blobs, doc, `image ${i + 1}`, 0, opts.signal);
    if (opts.refName !== undefined) index.push(indexEntry(doc, { [ANNOTATION_REF_NAME]: opts.refName }));
    else if (tags.length === 0) index.push(indexEntry(doc));
    else for (const tag of tags) index.push(indexEntry(doc, { [ANNOTATION_CONTAINERD_NAME]: tag.full, [ANNOTATION_REF_NAME]: tag.tag }));
    planned.push({ doc, tags });
  }
  return { blobs: blobs.ordered(), index, items: planned };
}

/** A layout's index.json (an OCI index) listing `manifests`, in the order given. */
export function indexJsonBytes(manifests: readonly Descriptor[]): Buffer {
  const index: IndexJson = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [...manifests] };
  return Buffer.from(JSON.stringify(index));
}

/** Every entry of an OCI layout as a tar: blobs, index.json, oci-layout. */
export function layoutEntries(plan: LayoutPlan, indexBytes: Buffer = indexJsonBytes(plan.index)): ArchiveEntry[] {
  const entries: ArchiveEntry[] = plan.blobs.map((b) => (b.bytes
    ? { name: blobPath(b.digest), bytes: b.bytes }
    : { name: blobPath(b.digest), size: b.size, open: b.open!, what: b.what, digest: b.digest, leading: b.layer === true }));
  entries.push({ name: OCI_INDEX_FILE, bytes: indexBytes }, { name: OCI_LAYOUT_FILE, bytes: OCI_LAYOUT_BYTES });
  return entries;
}

/**
 * Writes one planned blob to `path` (a layout's blobs/sha256/HEX, a dir: layout's HEX);
 * a file already there with the blob's size is content-addressed and kept. Returns the
 * bytes written; `meter` is told every byte of the blob, kept or written.
 */
export async function writeBlobFile(path: string, blob: PlannedBlob, signal?: AbortSignal, meter?: ByteMeter): Promise<number> {
  const have = await stat(path).then((s) => s.size, () => undefined);
  if (have === blob.size) {
    meter?.add(blob.size);
    return 0;
  }
  await mkdir(dirname(path), { recursive: true });
  if (blob.bytes) {
    await writeFile(path, blob.bytes, { mode: 0o644 });
    meter?.add(blob.bytes.length);
  } else {
    // layer.open() verifies digest and size while it streams.
    const count = counting((n) => meter?.add(n));
    await pipeline(await blob.open!(signal), count, fileWriter(path, 0o644), signal ? { signal } : {});
  }
  return blob.size;
}

/** One meter over all the blobs a layout directory is written with. */
export function blobsMeter(blobs: readonly PlannedBlob[], dest: string, onProgress: ProgressListener | undefined): ByteMeter {
  const total = blobs.reduce((sum, b) => sum + b.size, 0);
  return byteMeter(onProgress, "write", `write ${dest}`, `writing ${dest}`, total);
}
