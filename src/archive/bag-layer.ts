import { pipeline } from "node:stream/promises";
import type { Digest } from "../model/digest.js";
import { FormatError, GantryError, AbortedError } from "../model/errors.js";
import type { Layer } from "../model/image.js";
import { makeLayer } from "../image/layer.js";
import type { Compression } from "../model/mediatypes.js";
import { measuring } from "../model/verify.js";
import { decompressor, sniffCompression } from "../compression/compression.js";
import { expansionBound } from "../compression/expansion.js";
import { discarding } from "../util/io.js";
import type { FileBag } from "./file-bag.js";

/**
 * Layers whose stored bytes are a file of a FileBag. Readers say what they know
 * (the diff_id from the config, the stored digest when a descriptor or a blob name
 * states it); what they do not know is found here: the compression from the magic
 * bytes, the stored digest by hashing the file once.
 */
export interface BagLayerInput {
  bag: FileBag;
  name: string;
  diffId: Digest;
  /** The digest of the stored bytes, when the format states it. */
  digest?: Digest;
  /** From a media type; sniffed from the first bytes otherwise. */
  compression?: Compression;
  /** Names the layer in errors, e.g. "layer 2 (a/layer.tar in app.tar)". */
  describe: string;
  signal?: AbortSignal;
}

/** A file's compression, told from its first four bytes: "none" unless they are gzip's or zstd's magic. */
export async function sniffEntry(bag: FileBag, name: string): Promise<Compression> {
  return sniffCompression(await bag.head(name, 4));
}

function abortedOr(err: unknown, signal: AbortSignal | undefined, what: string): unknown {
  if (signal?.aborted) return new AbortedError(signal.reason);
  if (err instanceof GantryError) return err;
  return new FormatError(`${what} cannot be decompressed (${(err as Error).message}); the layer is corrupt`, { cause: err });
}


/** The digest and size of a file's stored bytes, read once. */
export async function hashEntry(bag: FileBag, name: string, what: string, signal?: AbortSignal): Promise<{ digest: Digest; size: number }> {
  const m = measuring();
  try {
    await pipeline(await bag.open(name, signal), m.stream, discarding(), signal ? { signal } : {});
  } catch (err) {
    throw abortedOr(err, signal, what);
  }
  return m.result;
}

/** Stored digest, diff_id (digest after decompression) and size of a file, in one read. */
export async function measureEntry(
  bag: FileBag, name: string, compression: Compression, what: string, signal?: AbortSignal,
): Promise<{ digest: Digest; diffId: Digest; size: number }> {
  const stored = measuring();
  const plain = measuring();
  const bound = expansionBound(await bag.size(name), what);
  try {
    await pipeline(await bag.open(name, signal), stored.stream, decompressor(compression, bound), plain.stream, discarding(), signal ? { signal } : {});
  } catch (err) {
    throw abortedOr(err, signal, what);
  }
  const s = await stored.result;
  return { digest: s.digest, size: s.size, diffId: (await plain.result).digest };
}

/**
 * The Layer stored as the bag's file `name`. An unstated compression is sniffed, an unstated digest
 * hashed in one read (an uncompressed file's is its diff_id); reads verify the bytes as they flow.
 * Throws a FormatError when the file is missing or not a regular file, an AbortedError on `signal`.
 */
export async function bagLayer(input: BagLayerInput): Promise<Layer> {
  const { bag, name } = input;
  const size = await bag.size(name);
  const compression = input.compression ?? await sniffEntry(bag, name);
  // An uncompressed layer is its own diff: its stored digest is the diff_id.
  const digest = input.digest
    ?? (compression === "none" ? input.diffId : (await hashEntry(bag, name, input.describe, input.signal)).digest);
  return makeLayer({
    digest,
    diffId: input.diffId,
    size,
    compression,
    describe: input.describe,
    openRaw: (signal?: AbortSignal) => bag.open(name, signal),
  });
}
