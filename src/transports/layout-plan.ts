import type { Readable } from "node:stream";
import type { ArchiveEntry } from "../archive/archive-tar.js";
import { digestHex, type Digest } from "../model/digest.js";
import { DigestMismatchError, FormatError, InvalidReferenceError } from "../model/errors.js";
import type { Image } from "../model/image.js";
import { MediaType } from "../model/mediatypes.js";
import { imageManifest, type BuiltManifest } from "../image/manifest.js";
import type { Descriptor, IndexJson } from "../model/oci.js";
import { parseRepoTag, type RepoTag } from "./image-name.js";
import { ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, OCI_INDEX_FILE, OCI_LAYOUT_FILE, blobPath } from "./oci/names.js";

/**
 * What an OCI image layout holds for a list of images, computed before a byte is
 * written: every blob once (layers, configs, manifests, by digest), the index
 * entries, and each image's manifest. The docker-archive writer, the OCI archive
 * writer and the OCI directory writer all lay out this one plan.
 */

export interface ImageToWrite {
  readonly image: Image;
  /** NAME[:TAG] names; a missing tag means `latest`. */
  readonly repoTags: readonly string[];
}

export interface WriteResult {
  /** The OCI manifest digest of each image, in the order given. */
  manifestDigests: Digest[];
  /** Bytes written (the archive's size). */
  bytes: number;
}

export interface PlannedBlob {
  readonly digest: Digest;
  readonly size: number;
  /** Small blobs (configs, manifests) are in memory; layers are opened (and verified) on demand. */
  readonly bytes?: Buffer;
  readonly open?: (signal?: AbortSignal) => Promise<Readable>;
  readonly what: string;
}

export interface LayoutPlan {
  /** Unique by digest, sorted by digest. */
  readonly blobs: readonly PlannedBlob[];
  /** index.json entries: one per image and tag, in the order given. */
  readonly index: readonly Descriptor[];
  /** Per image, in the order given: its OCI manifest and its parsed tags. */
  readonly images: readonly { manifest: BuiltManifest; tags: readonly RepoTag[]; image: Image }[];
}

export interface PlanOptions {
  /**
   * An explicit `org.opencontainers.image.ref.name` (oci:DIR:REF) for the one image
   * written; otherwise each tag gets docker's annotations (full name and tag).
   */
  refName?: string;
}

export const OCI_LAYOUT_BYTES = Buffer.from(JSON.stringify({ imageLayoutVersion: "1.0.0" }));

function indexEntry(manifest: BuiltManifest, annotations?: Record<string, string>): Descriptor {
  const d: Descriptor = { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.bytes.length };
  if (annotations) d.annotations = annotations;
  return d;
}

export function planLayout(images: readonly ImageToWrite[], opts: PlanOptions = {}): LayoutPlan {
  if (images.length === 0) throw new FormatError("an image archive or layout must hold at least one image; none was given");
  if (opts.refName !== undefined && images.length !== 1) {
    throw new InvalidReferenceError(`the reference name "${opts.refName}" can name one image, but ${images.length} were given`);
  }
  const blobs = new Map<Digest, PlannedBlob>();
  const add = (blob: PlannedBlob): void => {
    const seen = blobs.get(blob.digest);
    if (seen && seen.size !== blob.size) {
      throw new DigestMismatchError(`${blob.what} and ${seen.what} share the digest ${blob.digest} but differ in size (${blob.size} and ${seen.size} bytes)`);
    }
    if (!seen) blobs.set(blob.digest, blob);
  };
  const taggedBy = new Map<string, number>();
  const index: Descriptor[] = [];
  const planned = images.map(({ image, repoTags }, i) => {
    const manifest = imageManifest(image, "oci");
    const tags = repoTags.map((t) => parseRepoTag(t, `the tag of image ${i + 1}`));
    for (const tag of tags) {
      const other = taggedBy.get(tag.full);
      if (other !== undefined && other !== i) throw new InvalidReferenceError(`the tag ${tag.familiar} is given to two images (${other + 1} and ${i + 1}); give each tag to one image`);
      taggedBy.set(tag.full, i);
    }
    for (const [n, layer] of image.layers.entries()) {
      add({ digest: layer.digest, size: layer.size, open: (signal) => layer.open(signal), what: `layer ${n + 1} of image ${i + 1} (${layer.digest})` });
    }
    add({ digest: image.configDigest, size: image.configBytes.length, bytes: image.configBytes, what: `the config of image ${i + 1}` });
    add({ digest: manifest.digest, size: manifest.bytes.length, bytes: manifest.bytes, what: `the manifest of image ${i + 1}` });
    if (opts.refName !== undefined) {
      index.push(indexEntry(manifest, { [ANNOTATION_REF_NAME]: opts.refName }));
    } else if (tags.length === 0) {
      index.push(indexEntry(manifest));
    } else {
      for (const tag of tags) index.push(indexEntry(manifest, { [ANNOTATION_CONTAINERD_NAME]: tag.full, [ANNOTATION_REF_NAME]: tag.tag }));
    }
    return { manifest, tags, image };
  });
  const sorted = [...blobs.values()].sort((a, b) => (digestHex(a.digest) < digestHex(b.digest) ? -1 : 1));
  return { blobs: sorted, index, images: planned };
}

export function indexJsonBytes(manifests: readonly Descriptor[]): Buffer {
  const index: IndexJson = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [...manifests] };
  return Buffer.from(JSON.stringify(index));
}

/** Every entry of an OCI layout as a tar: blobs, index.json, oci-layout. */
export function layoutEntries(plan: LayoutPlan, indexBytes: Buffer = indexJsonBytes(plan.index)): ArchiveEntry[] {
  const entries: ArchiveEntry[] = plan.blobs.map((b) => (b.bytes
    ? { name: blobPath(b.digest), bytes: b.bytes }
    : { name: blobPath(b.digest), size: b.size, open: b.open!, what: b.what }));
  entries.push({ name: OCI_INDEX_FILE, bytes: indexBytes }, { name: OCI_LAYOUT_FILE, bytes: OCI_LAYOUT_BYTES });
  return entries;
}

