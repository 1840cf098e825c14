import { createGunzip } from "node:zlib";
import { PassThrough, type Transform } from "node:stream";
import { createRequire } from "node:module";
import type { Compression } from "../model/mediatypes.js";
import { UnsupportedError } from "../model/errors.js";
import { createParallelGzip } from "./parallel-gzip.js";

/**
 * Compression behind one interface: every writer and reader goes through
 * `compressor(kind)` / `decompressor(kind)`, and `sniffCompression` tells a
 * stored layer's kind from its first bytes (readers never trust file names).
 */

const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

export function sniffCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === GZIP_MAGIC[0] && head[1] === GZIP_MAGIC[1]) return "gzip";
  if (head.length >= 4 && ZSTD_MAGIC.every((b, i) => head[i] === b)) return "zstd";
  return "none";
}

/** gzip level 6 is what docker, skopeo and nix use; the compressed bytes depend on it alone. */
export const DEFAULT_GZIP_LEVEL = 6;
export const DEFAULT_ZSTD_LEVEL = 3;

interface ZstdModule {
  CompressStream: new (params?: Record<string, unknown>) => Transform;
  DecompressStream: new () => Transform;
  Compressor: unknown;
}

let zstdModule: ZstdModule | undefined;
function zstd(): ZstdModule {
  if (!zstdModule) {
    try {
      zstdModule = createRequire(import.meta.url)("zstd-napi") as ZstdModule;
    } catch (err) {
      throw new UnsupportedError("zstd support is not available: the zstd-napi package failed to load (reinstall gantry's dependencies)", { cause: err });
    }
  }
  return zstdModule;
}

export function compressor(kind: Compression, level?: number): Transform {
  switch (kind) {
    case "gzip":
      // Fixed-size blocks deflated on every core, one gzip member with a fixed header:
      // the bytes depend on the input and the level alone (see parallel-gzip.ts).
      return createParallelGzip({ level: level ?? DEFAULT_GZIP_LEVEL });
    case "zstd": {
      const z = zstd();
      return new z.CompressStream({ compressionLevel: level ?? DEFAULT_ZSTD_LEVEL });
    }
    case "none":
      return new PassThrough();
  }
}

export function decompressor(kind: Compression): Transform {
  switch (kind) {
    case "gzip":
      // Concatenated gzip members (pigz-style output) are valid; zlib handles them.
      return createGunzip({ chunkSize: 64 * 1024 });
    case "zstd":
      return new (zstd().DecompressStream)();
    case "none":
      return new PassThrough();
  }
}
