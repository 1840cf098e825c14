import { PassThrough, Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Digest } from "../model/digest.js";
import { FormatError, GantryError } from "../model/errors.js";
import type { Compression } from "../model/mediatypes.js";
import { chain, verifying } from "../model/verify.js";
import { decompressor } from "../compression/compression.js";
import { expansionBound } from "../compression/expansion.js";
import { tarShapeChecking } from "../tar/shape.js";
import { discarding } from "../util/io.js";

/**
 * What a layer's stored bytes must be, beyond their digest: a stream of its compression
 * that decompresses (strictly, within the bomb bound of its size) to a whole tar hashing to
 * its diff_id. A copy that checked the digest alone wrote on layers `docker load` then
 * refused: 33 bytes of anything, stored uncompressed, are their own diff_id.
 */
export interface LayerClaims {
  compression: Compression;
  digest: Digest;
  diffId: Digest;
  size: number;
  /** Names the layer in errors. */
  describe: string;
}

/** A decompressor's own words (zlib's, zstd's) as the error that names the layer. */
export function corruptLayerError(layer: LayerClaims, err: Error): Error {
  if (err instanceof GantryError) return err;
  return new FormatError(`${layer.describe} cannot be decompressed as ${layer.compression} (${err.message}); the layer is corrupt`, { cause: err });
}

/**
 * Layers checked whole in this process, by digest and diff_id: their bytes are read again
 * only through a digest check, which makes them these same bytes, so they are not checked
 * twice (a build copies each base layer it has already read to compare with).
 */
const checkedWhole = new Set<string>();

/** How far a copy may run ahead of its check. */
const TEE_BUFFER = 4 * 1024 * 1024;

function keyOf(layer: LayerClaims): string {
  return `${layer.digest} ${layer.diffId}`;
}

/**
 * The uncompressed tar of `stored` (bytes already checked against the digest), checked as
 * it flows to hash to the diff_id and to be a whole tar. Read to its end, the layer is known
 * whole, and a copy of it is not checked again.
 */
export function uncompressedOf(stored: Readable, layer: LayerClaims): Readable {
  // An uncompressed layer whose digest is its diff_id is verified already.
  const plain = layer.compression === "none" && layer.digest === layer.diffId
    ? stored
    : chain(chain(stored, decompressor(layer.compression, expansionBound(layer.size, layer.describe))),
      verifying(layer.diffId, `${layer.describe} (uncompressed)`), (err) => corruptLayerError(layer, err));
  const tar = chain(plain, tarShapeChecking(layer.describe));
  tar.once("end", () => checkedWhole.add(keyOf(layer)));
  return tar;
}

/**
 * A pass-through of a layer's stored bytes that checks them, as they flow and without a
 * second read, to be the layer they claim to be (see LayerClaims): each chunk is passed on
 * and also fed to `uncompressedOf`, and the stream fails at its end if that found the layer
 * wrong. Writers that copy a layer's stored bytes read them through this; their output is
 * atomic, so a layer refused at its end leaves no trace.
 *
 * A check that fails early is reported at the end all the same, so that the digest check
 * upstream speaks first: bytes that are not the blob named (a damaged cache file) are a
 * digest mismatch, whatever their decompressor made of them.
 */
export function checkingLayer(layer: LayerClaims): Transform {
  if (checkedWhole.has(keyOf(layer))) return new PassThrough();
  // A few MiB of slack, so the copy runs ahead of the decompressor instead of in step with it.
  const tee = new PassThrough({ highWaterMark: TEE_BUFFER });
  let failure: Error | undefined;
  const checked = pipeline(uncompressedOf(tee, layer), discarding())
    .catch((err: unknown) => { failure = err as Error; });
  const check = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      // Once the check has failed (and so the tee closed), the rest only passes on to the end.
      if (tee.destroyed || tee.write(chunk)) {
        done(null, chunk);
        return;
      }
      const resume = (): void => {
        tee.off("drain", resume).off("close", resume);
        done(null, chunk);
      };
      tee.on("drain", resume).on("close", resume);
    },
    flush(done) {
      if (!tee.destroyed) tee.end();
      void checked.then(() => done(failure));
    },
  });
  check.on("close", () => tee.destroy());
  return check;
}
