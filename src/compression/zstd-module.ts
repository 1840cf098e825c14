import { createRequire } from "node:module";
import type { Transform } from "node:stream";
import { UnsupportedError } from "../model/errors.js";

/**
 * zstd-napi, loaded when first needed (a native addon: reading gzip layers must not depend
 * on it loading). The compressor is its stream; the decompressor is ours over its
 * decompression context (zstd-stream.ts), since its DecompressStream ignores backpressure.
 */

export interface ZstdModule {
  CompressStream: new (params?: Record<string, unknown>) => Transform;
}

/** `ZSTD_decompressStream`'s answer: its return value (0 once a frame is whole), bytes produced, bytes consumed. */
export type ZstdStreamResult = [returnValue: number, produced: number, consumed: number];

export interface ZstdDCtx {
  decompressStream(dst: Uint8Array, src: Uint8Array): ZstdStreamResult;
}

export interface ZstdBinding {
  DCtx: new () => ZstdDCtx;
  /** The output buffer size zstd recommends for streaming decompression (one block, 128 KiB). */
  dStreamOutSize(): number;
}

const load = createRequire(import.meta.url);
let module: ZstdModule | undefined;
let binding: ZstdBinding | undefined;

function required<T>(id: string): T {
  try {
    return load(id) as T;
  } catch (err) {
    throw new UnsupportedError("zstd support is not available: the zstd-napi package failed to load (reinstall gantry's dependencies)", { cause: err });
  }
}

export function zstdModule(): ZstdModule {
  return (module ??= required<ZstdModule>("zstd-napi"));
}

export function zstdBinding(): ZstdBinding {
  return (binding ??= required<ZstdBinding>("zstd-napi/binding"));
}
