import { createRequire } from "node:module";
import type { Transform } from "node:stream";
import { UnsupportedError } from "../model/errors.js";

/**
 * zstd-napi, loaded when first needed (a native addon: reading gzip layers must not depend
 * on it loading). The compressor is its stream; the decompressor is ours over its
 * decompression context (zstd-stream.ts), since its DecompressStream ignores backpressure.
 */

/** What the compressor uses of the zstd-napi package: its compressing stream, loaded by zstdModule. */
export interface ZstdModule {
  CompressStream: new (params?: Record<string, unknown>) => Transform;
}

/** `ZSTD_decompressStream`'s answer: its return value (0 once a frame is whole), bytes produced, bytes consumed. */
export type ZstdStreamResult = [returnValue: number, produced: number, consumed: number];

/** A zstd decompression context: it keeps the state of one stream across calls, so each stream needs its own. */
export interface ZstdDCtx {
  decompressStream(dst: Uint8Array, src: Uint8Array): ZstdStreamResult;
}

/** What the decompressor (zstd-stream.ts) uses of zstd-napi's native binding. */
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

/** zstd-napi, loaded on the first call; throws an UnsupportedError when the addon cannot be loaded. */
export function zstdModule(): ZstdModule {
  return (module ??= required<ZstdModule>("zstd-napi"));
}

/** zstd-napi's native binding, loaded on the first call; throws an UnsupportedError when it cannot be loaded. */
export function zstdBinding(): ZstdBinding {
  return (binding ??= required<ZstdBinding>("zstd-napi/binding"));
}
