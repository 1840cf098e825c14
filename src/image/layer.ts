import type { Readable } from "node:stream";
import type { Digest } from "../model/digest.js";
import type { Layer } from "../model/image.js";
import { layerMediaType, type Compression } from "../model/mediatypes.js";
import type { Descriptor } from "../model/oci.js";
import { chain, sizing, verified } from "../model/verify.js";
import { checkingLayer, uncompressedOf } from "./layer-check.js";

/**
 * The one way to make a Layer: give the stored bytes (an opener) and what they must
 * hash to; verification and decompression are derived here, so every transport gets
 * them for free and none writes them again. The stored bytes, as every writer copies
 * them, are checked whole on the way (layer-check.ts): digest, decompression, tar shape
 * and diff_id.
 */
export interface LayerSource {
  digest: Digest;
  diffId: Digest;
  size: number;
  compression: Compression;
  /**
   * The descriptor a manifest gives the layer (its media type, annotations and URLs are
   * kept). Without one, an OCI descriptor is made from digest, size and compression.
   */
  descriptor?: Descriptor;
  /** Opens the stored bytes, unverified. Called once per read. */
  openRaw: (signal?: AbortSignal) => Promise<Readable>;
  /** Names the blob in errors, e.g. "layer 2 of docker-archive:base.tar". */
  describe: string;
  /**
   * The stored bytes were hashed as this process wrote them (a layer just packed): reading
   * them back checks their size, not their digest and diff_id again. Everything read from
   * elsewhere, the cache included, is checked as it is read.
   */
  hashedOnWrite?: boolean;
  /**
   * The stored bytes were checked whole (decompressed to a tar hashing to the diff_id) when
   * they entered the store they are read from: gantry's cache, which holds only layers it
   * packed or downloaded and checked. Reading them checks their digest (a damaged file is
   * still caught), not their content again: an unchanged rebuild copies the cached layers
   * into its output without decompressing them.
   */
  contentChecked?: boolean;
}

/**
 * The Layer over `src`'s stored bytes, read only when a stream is opened. `open` checks their digest
 * (their size alone when `hashedOnWrite`) and, unless `hashedOnWrite` or `contentChecked`, the whole
 * layer as it flows; `openUncompressed` checks the tar against the diff_id. A failed check fails the stream.
 */
export function makeLayer(src: LayerSource): Layer {
  const descriptor: Descriptor = src.descriptor
    ?? { mediaType: layerMediaType(src.compression, "oci"), digest: src.digest, size: src.size };
  /** The stored bytes with their digest (or, hashed on write, their size) checked. */
  const openStored = async (signal?: AbortSignal): Promise<Readable> => (src.hashedOnWrite
    ? chain(await src.openRaw(signal), sizing(src.size, src.describe))
    : verified(await src.openRaw(signal), src.digest, src.describe, src.size));
  return {
    digest: src.digest,
    diffId: src.diffId,
    size: src.size,
    mediaType: descriptor.mediaType,
    compression: src.compression,
    descriptor,
    async open(signal?: AbortSignal): Promise<Readable> {
      const stored = await openStored(signal);
      return src.hashedOnWrite || src.contentChecked ? stored : chain(stored, checkingLayer(src));
    },
    async openUncompressed(signal?: AbortSignal): Promise<Readable> {
      return uncompressedOf(await openStored(signal), src);
    },
  };
}
