import * as zlib from "node:zlib";
import type { BlockJob } from "./block-job.js";

/**
 * The block format of gantry's gzip output, shared by the calling thread and the
 * deflate workers so that both write the same bytes.
 *
 * The input is cut into blocks of BLOCK_SIZE bytes; each block is deflated on its own, from
 * an empty window, and ends with a sync flush: an empty stored block that leaves the
 * output byte-aligned, so the deflated blocks concatenate into one valid deflate stream.
 * The last block (the partial rest of the input, possibly empty) ends with Z_FINISH
 * instead. A full flush would write the same marker; the state reset it adds buys nothing
 * when every block starts a fresh deflate stream anyway.
 *
 * Blocks are not primed with the 32 KiB of input before them: Node keeps its copy of a
 * dictionary with the zlib handle until the garbage collector frees the handle, which in
 * a worker, whose heap barely grows, is hundreds of blocks later. The app's first build
 * held 20 MB of such copies at its peak (bench/README.md); priming saved 0.3% of the size.
 *
 * The block size is part of the format: it never depends on the number of threads.
 */

/** 512 KiB: measured against 128 KiB–2 MiB, the least CPU per byte at the same size. */
export const BLOCK_SIZE = 512 * 1024;

/**
 * Larger than any block's deflated size (incompressible data costs 5 bytes per 64 KiB
 * stored block, plus the flush marker). zlib then writes each block into one output
 * buffer; this matters for the bytes, not only for speed: when a sync flush fills the
 * output buffer exactly, zlib is called again and writes a second, empty marker.
 */
const OUTPUT_BUFFER_SIZE = BLOCK_SIZE + (BLOCK_SIZE >> 8) + 1024;

/** Deflates one block (raw deflate, no header) as the format above says. */
export function deflateBlock(job: BlockJob): Buffer {
  return zlib.deflateRawSync(job.input, {
    level: job.level,
    chunkSize: OUTPUT_BUFFER_SIZE,
    finishFlush: job.last ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH,
  });
}

/**
 * The 10-byte gzip header Node's createGzip (zlib) writes: no file name, mtime 0, the
 * extra-flags byte zlib derives from the level, OS byte 3 (Unix).
 */
export function gzipHeader(level: number): Buffer {
  const extraFlags = level === 9 ? 2 : level < 2 ? 4 : 0;
  return Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, extraFlags, 3]);
}

/** The 8-byte gzip trailer: crc32 of the input, then its length mod 2^32, little-endian. */
export function gzipTrailer(crc: number, length: number): Buffer {
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc >>> 0, 0);
  trailer.writeUInt32LE(length % 2 ** 32, 4);
  return trailer;
}

/**
 * The running crc32 of a stream: zlib's (Node 20.15 and later), else a table-driven one
 * for the Node 20 releases before it, about ten times slower. Chosen at the first call, not
 * as the module loads: the gantry command loads zlib when a name of it is first read
 * (tools/bundle-cli.mjs), and a command that compresses nothing need not.
 */
export function crc32(data: Uint8Array, crc: number): number {
  chosenCrc32 ??= typeof zlib.crc32 === "function" ? zlib.crc32 : crc32ByTable;
  return chosenCrc32(data, crc);
}
let chosenCrc32: ((data: Uint8Array, crc: number) => number) | undefined;

let table: Uint32Array | undefined;
/** Exported for its test; use `crc32`. */
export function crc32ByTable(data: Uint8Array, crc: number): number {
  if (table === undefined) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let c = ~crc;
  for (const byte of data) c = (table[(c ^ byte) & 0xff] ?? 0) ^ (c >>> 8);
  return ~c >>> 0;
}
