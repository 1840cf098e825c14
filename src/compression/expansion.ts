import { FormatError } from "../model/errors.js";

/**
 * How far a compressed stream may expand before it is refused as a decompression bomb.
 *
 * Nothing an image states bounds a layer's uncompressed size (a diff_id is a digest, not a
 * length), so the bound is relative to what is stated: the stored size. A stream is refused
 * once its output passes BOTH `MAX_EXPANSION_RATIO` times its stored size AND
 * `EXPANSION_FLOOR` bytes:
 *
 * - deflate cannot expand more than ~1032 times, so for gzip the ratio is the format's own
 *   limit and no valid gzip layer is ever refused; zstd's RLE blocks expand 32,768 times
 *   (a 78 KB zstd layer can hold 2.3 GB of zeros), and it is there that the rule bites;
 * - the floor keeps small, very compressible layers (a few MiB of zeros) out of reach of
 *   the ratio: below 1 GiB of output, nothing is refused.
 *
 * What is given up: a zstd layer holding more than 1 GiB that compresses more than 1024
 * times (a large file of zeros) is refused. Memory never depended on this bound: every
 * decompressor honours backpressure (see zstd-stream.ts, gunzip-stream.ts), so a bomb that
 * passes costs time and disk, never RAM.
 */
export const MAX_EXPANSION_RATIO = 1024;
/** 1 GiB of output, below which no stream is refused whatever its ratio. */
export const EXPANSION_FLOOR = 1024 * 1024 * 1024;

/** The limit one decompression is held to; made by expansionBound, passed to `decompressor`. */
export interface ExpansionBound {
  /** Output bytes past which the stream is refused. */
  readonly maxBytes: number;
  /** The stored (compressed) size the bound was derived from. */
  readonly storedSize: number;
  /** Names the stream in the error ("layer 2 of 3 (…)"). */
  readonly what: string;
}

/** The bound of a stream of `storedSize` stored bytes: the larger of `floor` and MAX_EXPANSION_RATIO times that size. */
export function expansionBound(storedSize: number, what: string, floor = EXPANSION_FLOOR): ExpansionBound {
  return { maxBytes: Math.max(floor, storedSize * MAX_EXPANSION_RATIO), storedSize, what };
}

/** The FormatError, naming the stream, that a decompressor fails with once its output passes `bound`. */
export function expansionError(bound: ExpansionBound): FormatError {
  return new FormatError(`${bound.what} expands past ${bound.maxBytes} bytes from ${bound.storedSize} stored (more than ${MAX_EXPANSION_RATIO} times its size); gantry refuses it as a decompression bomb`);
}

/** Counts output bytes against a bound; `add` returns the error to fail with once it is passed. */
export class ExpansionCounter {
  private produced = 0;

  constructor(private readonly bound: ExpansionBound | undefined) {}

  add(bytes: number): FormatError | undefined {
    this.produced += bytes;
    return this.bound !== undefined && this.produced > this.bound.maxBytes ? expansionError(this.bound) : undefined;
  }
}
