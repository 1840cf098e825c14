import type { Readable } from "node:stream";
import type { Digest } from "./digest.js";
import type { Compression } from "./mediatypes.js";
import type { ImageConfigJson } from "./oci.js";

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
  readonly compression: Compression;
  /** The stored bytes, verified against `digest`. */
  open(signal?: AbortSignal): Promise<Readable>;
  /** The uncompressed tar, verified against `diffId`. */
  openUncompressed(signal?: AbortSignal): Promise<Readable>;
}

/**
 * An image: its config (exact bytes, so digests are stable) and its layers, base first.
 * `repoTags` are the names the source knew it by (docker-archive RepoTags, OCI ref names).
 */
export interface Image {
  readonly configBytes: Buffer;
  readonly configDigest: Digest;
  readonly config: ImageConfigJson;
  readonly layers: readonly Layer[];
  readonly repoTags: readonly string[];
}

/** What a reader can say about a source holding several images. */
export interface ImageSummary {
  repoTags: string[];
  configDigest: Digest;
}
