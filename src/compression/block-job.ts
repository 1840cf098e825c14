import { deflateBlock } from "./gzip-block.js";
import { zstdFrame } from "./zstd-block.js";

/**
 * One block of a layer's input to compress on its own, as parallel-blocks.ts cuts it: the
 * same job whether the calling thread or a worker (block-worker.ts) compresses it, so
 * either writes the same bytes.
 */
export interface BlockJob {
  /** How the block is compressed: a deflate block of one gzip member, or a zstd frame. */
  format: BlockFormatName;
  /** A whole block, or less for the last one (possibly empty). */
  input: Uint8Array;
  /** The final block of the input. */
  last: boolean;
  /** The compressor's level, the same for every block of a stream. */
  level: number;
}

/** The compressor a block is for: "gzip" blocks are raw deflate, one gzip member's worth together. */
export type BlockFormatName = "gzip" | "zstd";

/** Compresses one block as its format says (gzip-block.ts, zstd-block.ts). */
export function compressBlock(job: BlockJob): Buffer {
  return job.format === "gzip" ? deflateBlock(job) : zstdFrame(job.input, job.level);
}
