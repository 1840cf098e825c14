import type { Readable } from "node:stream";
import type { Digest } from "../model/digest.js";
import type { Layer } from "../model/image.js";
import { layerMediaType, type Compression } from "../model/mediatypes.js";
import type { Descriptor } from "../model/oci.js";
import { chain, sizing, verified, verifying } from "../model/verify.js";
import { FormatError, GantryError } from "../model/errors.js";
import { decompressor } from "../compression/compression.js";
import { expansionBound } from "../compression/expansion.js";

/**
 * The one way to make a Layer: give the stored bytes (an opener) and what they must
 * hash to; verification and decompression are derived here, so every transport gets
 * them for free and none writes them again.
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
   * them back checks their size, not their digest again. Everything read from elsewhere,
   * the cache included, is hashed as it is read.
   */
  hashedOnWrite?: boolean;
}

export function makeLayer(src: LayerSource): Layer {
  const descriptor: Descriptor = src.descriptor
    ?? { mediaType: layerMediaType(src.compression, "oci"), digest: src.digest, size: src.size };
  const open = async (signal?: AbortSignal): Promise<Readable> => (src.hashedOnWrite
    ? chain(await src.openRaw(signal), sizing(src.size, src.describe))
    : verified(await src.openRaw(signal), src.digest, src.describe, src.size));
  return {
    digest: src.digest,
    diffId: src.diffId,
    size: src.size,
    mediaType: descriptor.mediaType,
    compression: src.compression,
    descriptor,
    open,
    async openUncompressed(signal?: AbortSignal): Promise<Readable> {
      const stored = await open(signal);
      if (src.compression === "none" && src.digest === src.diffId) return stored;
      const plain = chain(stored, decompressor(src.compression, expansionBound(src.size, src.describe)));
      // A corrupt stream fails inside the decompressor, with zlib's or zstd's words: name the layer.
      return chain(plain, verifying(src.diffId, `${src.describe} (uncompressed)`), (err) => (err instanceof GantryError ? err
        : new FormatError(`${src.describe} cannot be decompressed as ${src.compression} (${err.message}); the layer is corrupt`, { cause: err })));
    },
  };
}
