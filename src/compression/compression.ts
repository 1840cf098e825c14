import { PassThrough, type Duplex, type Transform } from "node:stream";
import type { Compression } from "../model/mediatypes.js";
import type { ExpansionBound } from "./expansion.js";
import { strictGunzip } from "./gunzip-stream.js";
import { createParallelGzip } from "./parallel-gzip.js";
import { ParallelBlockCompressor } from "./parallel-blocks.js";
import { createParallelZstd } from "./parallel-zstd.js";
import { ZstdDecompressor } from "./zstd-stream.js";

/**
 * Compression behind one interface: every writer and reader goes through
 * `compressor(kind)` / `decompressor(kind)`, and `sniffCompression` tells a
 * stored layer's kind from its first bytes (readers never trust file names).
 */

const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

/** A stored blob's compression from its first bytes (four are needed to see zstd): gzip or zstd by magic number, "none" otherwise. */
export function sniffCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === GZIP_MAGIC[0] && head[1] === GZIP_MAGIC[1]) return "gzip";
  if (head.length >= 4 && ZSTD_MAGIC.every((b, i) => head[i] === b)) return "zstd";
  return "none";
}

/**
 * Chosen by measurement (bench/README.md, "Choosing the gzip level"): level 4 is the fastest
 * whose layers stay within 5% of `gzip -6`'s size (levels 1–3 are 7–11% larger); level 6,
 * what gzip, pigz and nixpkgs use, costs 40% more time for 3% less. The compressed bytes
 * depend on the level alone, so a spec can ask for another (`compressionLevel`).
 */
export const DEFAULT_GZIP_LEVEL = 4;
/** zstd's own default, what `zstd` and containerd use. */
export const DEFAULT_ZSTD_LEVEL = 3;
/** The levels each compressor takes (zstd's negative "fast" levels are left out). */
export const LEVELS: Record<Exclude<Compression, "none">, { min: number; max: number }> = {
  gzip: { min: 1, max: 9 },
  zstd: { min: 1, max: 19 },
};

/**
 * A compressing stream. `threads` (default: every core, at most 8) and `expectedLength` (how
 * much input is coming, when known: see ParallelOptions) change the speed, never the bytes:
 * they depend on the input, the kind and the level alone.
 */
export function compressor(kind: Compression, level?: number, threads?: number, expectedLength?: number): Transform {
  const speed = { ...(threads !== undefined ? { threads } : {}), expectedLength };
  switch (kind) {
    case "gzip":
      // Fixed-size blocks deflated on every core, one gzip member with a fixed header (see parallel-gzip.ts).
      return createParallelGzip({ level: level ?? DEFAULT_GZIP_LEVEL, ...speed });
    case "zstd":
      // Fixed-size frames compressed on every core and concatenated (see parallel-zstd.ts).
      return createParallelZstd({ level: level ?? DEFAULT_ZSTD_LEVEL, ...speed });
    case "none":
      return new PassThrough();
  }
}

/**
 * Where a writer of a compressor(kind) stream can put its input to spare a copy: the free
 * space of the block being filled, which the gzip and zstd streams take a write of as it is
 * (parallel-blocks.ts). Undefined for "none", which passes each written chunk itself on, so
 * each needs a buffer of its own.
 */
export function compressorInputSpace(stream: Transform): (() => Buffer) | undefined {
  return stream instanceof ParallelBlockCompressor ? () => stream.inputSpace() : undefined;
}

/**
 * A decompressing stream: strict (a damaged or cut stream, or bytes after its end, fail it),
 * bounded in memory (it waits for its reader), and, given a `bound`, refusing to expand past
 * it (see expansion.ts).
 */
export function decompressor(kind: Compression, bound?: ExpansionBound): Duplex {
  switch (kind) {
    case "gzip":
      // Concatenated gzip members (pigz-style output) are valid; zlib handles them.
      return strictGunzip(bound);
    case "zstd":
      return new ZstdDecompressor(bound);
    case "none":
      return new PassThrough();
  }
}
