import type { Readable } from "node:stream";
import type { Digest } from "./digest.js";
import type { Compression } from "./mediatypes.js";
import type { Descriptor, ImageConfigJson, IndexJson, ManifestJson } from "./oci.js";

/**
 * The image model, after go-containerregistry's pkg/v1: what a source holds is kept as it
 * was read (the manifest's and the config's exact bytes, media types, descriptors with
 * their annotations and URLs), so a digest shown is the digest the source serves, and a
 * copy to a place that can hold the same manifest writes the same bytes. Only sources that
 * hold no manifest (docker-archive, the Docker engine) have one made for them.
 *
 * Blobs are openers, not buffers: a layer is read when asked, as often as asked, and every
 * stream is verified against its digest while it flows.
 */

/**
 * A layer: a blob whose bytes can be opened as often as needed.
 * Streams returned by `open` and `openUncompressed` are verified while they flow:
 * they fail with DigestMismatchError at the end if the bytes do not match
 * `digest` (compressed) or `diffId` (uncompressed).
 */
export interface Layer {
  /** Digest of the bytes as stored (compressed, or the tar itself when uncompressed). */
  readonly digest: Digest;
  /** Digest of the uncompressed tar (rootfs.diff_ids). */
  readonly diffId: Digest;
  /** Size in bytes of the stored blob. */
  readonly size: number;
  /** The media type the manifest gives the layer (Docker or OCI spelling, as read). */
  readonly mediaType: string;
  readonly compression: Compression;
  /** The layer's descriptor as its manifest states it: annotations and URLs are kept. */
  readonly descriptor: Descriptor;
  /**
   * The stored bytes, verified against `digest` and, as they flow, decompressed and checked
   * to be a tar hashing to `diffId` (what every writer copies; see image/layer-check.ts).
   */
  open(signal?: AbortSignal): Promise<Readable>;
  /** The uncompressed tar, verified against `diffId`. */
  openUncompressed(signal?: AbortSignal): Promise<Readable>;
}

/** What an image and an index share: a manifest document, kept byte for byte. */
export interface ManifestDocumentOf<K extends string> {
  readonly kind: K;
  /** The manifest (or index) exactly as the source holds it. */
  readonly manifestBytes: Buffer;
  /** sha256 of `manifestBytes`: what `@sha256:` pins and a registry's Docker-Content-Digest. */
  readonly digest: Digest;
  readonly mediaType: string;
  /** The names the source knew it by (docker-archive RepoTags, OCI ref names, a registry tag). */
  readonly repoTags: readonly string[];
}

/** An image: a manifest, its config (exact bytes) and its layers, base first. */
export interface Image extends ManifestDocumentOf<"image"> {
  readonly manifest: ManifestJson;
  readonly configBytes: Buffer;
  readonly configDigest: Digest;
  readonly config: ImageConfigJson;
  readonly layers: readonly Layer[];
}

/**
 * An image index (OCI index or Docker manifest list). Children are read when asked for,
 * and checked against the digest and size their descriptor states.
 */
export interface ImageIndex extends ManifestDocumentOf<"index"> {
  /** The index document as parsed (its `manifests` are `manifests` below). */
  readonly indexManifest: IndexJson;
  /** The children's descriptors, in the order the index lists them. */
  readonly manifests: readonly Descriptor[];
  /** A child image or index, by its descriptor. */
  child(descriptor: Descriptor, signal?: AbortSignal): Promise<Image | ImageIndex>;
  /** The child image with this manifest digest; an error if there is none or it is an index. */
  image(digest: Digest, signal?: AbortSignal): Promise<Image>;
  /** The child index with this digest; an error if there is none or it is an image. */
  index(digest: Digest, signal?: AbortSignal): Promise<ImageIndex>;
}

/** What a reference resolves to: one image, or an index of images. */
export type ImageOrIndex = Image | ImageIndex;

/** What a source holding several images says about each, for listings and "which one?" errors. */
export interface ImageSummary {
  readonly repoTags: readonly string[];
  readonly digest: Digest;
  readonly mediaType: string;
}
