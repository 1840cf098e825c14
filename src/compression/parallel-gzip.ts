import type { Transform } from "node:stream";
import { UnsupportedError } from "../model/errors.js";
import { BLOCK_SIZE, crc32, gzipHeader, gzipTrailer } from "./gzip-block.js";
import { ParallelBlockCompressor, type BlockFormat, type ParallelOptions } from "./parallel-blocks.js";

/**
 * gzip on several cores with bytes that depend on the input and the level alone
 * (parallel-blocks.ts). One gzip member: the header Node's createGzip writes, then the
 * input's blocks deflated as gzip-block.ts describes, concatenated in input order, then the
 * crc32 and length of the whole input.
 */

/**
 * Below this much input, blocks are deflated on the calling thread. Starting two workers
 * takes 60–80 ms and about 160 ms of CPU, as long as deflating 4–8 MiB on one thread;
 * measured in bench/compress.ts, workers paid off from about 8 MiB and broke even at 4.
 */
export const DEFAULT_PARALLEL_AFTER = 8 * BLOCK_SIZE;

/** Options for createParallelGzip: only `level` changes the output bytes; a zlib level 0–9 (-1 means zlib's default, 6). */
export type ParallelGzipOptions = ParallelOptions;

const GZIP_BLOCKS: BlockFormat = {
  name: "gzip",
  blockSize: BLOCK_SIZE,
  parallelAfter: DEFAULT_PARALLEL_AFTER,
  checkLevel(level) {
    if (level === -1) return 6;
    if (!Number.isInteger(level) || level < 0 || level > 9) {
      throw new UnsupportedError(`gzip level ${level} is not supported: use an integer from 0 to 9`);
    }
    return level;
  },
  header: gzipHeader,
  trailer: gzipTrailer,
  crc32,
};

/**
 * A gzip stream whose bytes depend on the input and the level alone. Throws an UnsupportedError at
 * once for a level outside 0–9 (-1 aside), or a thread count or threshold that is not a whole number.
 */
export function createParallelGzip(options: ParallelGzipOptions): Transform {
  return new ParallelBlockCompressor(GZIP_BLOCKS, options);
}
