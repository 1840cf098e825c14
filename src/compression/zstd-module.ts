import { createRequire } from "node:module";
import { UnsupportedError } from "../model/errors.js";

/**
 * zstd-napi's native binding, loaded when first needed (a native addon: reading gzip layers
 * must not depend on it loading). gantry uses its contexts directly: the compressor makes
 * independent frames (zstd-block.ts), the decompressor is its own stream (zstd-stream.ts),
 * since the package's DecompressStream ignores backpressure.
 */

/** `ZSTD_decompressStream`'s answer: its return value (0 once a frame is whole), bytes produced, bytes consumed. */
export type ZstdStreamResult = [returnValue: number, produced: number, consumed: number];

/** A zstd decompression context: it keeps the state of one stream across calls, so each stream needs its own. */
export interface ZstdDCtx {
  decompressStream(dst: Uint8Array, src: Uint8Array): ZstdStreamResult;
}

/** A zstd compression context: its parameters persist across frames. */
export interface ZstdCCtx {
  /** `ZSTD_CCtx_setParameter`. */
  setParameter(param: number, value: number): void;
  /** `ZSTD_compress2`: `src` as one whole frame into `dst` (at least compressBound(src) long); the bytes written. */
  compress2(dst: Uint8Array, src: Uint8Array): number;
}

/** What gantry uses of zstd-napi's native binding. */
export interface ZstdBinding {
  CCtx: new () => ZstdCCtx;
  CParameter: { compressionLevel: number };
  /** The most a frame of `size` input bytes can take. */
  compressBound(size: number): number;
  DCtx: new () => ZstdDCtx;
  /** The output buffer size zstd recommends for streaming decompression (one block, 128 KiB). */
  dStreamOutSize(): number;
}

const load = createRequire(import.meta.url);
let binding: ZstdBinding | undefined;

function required<T>(id: string): T {
  try {
    return load(id) as T;
  } catch (err) {
    throw new UnsupportedError("zstd support is not available: the zstd-napi package failed to load (reinstall gantry's dependencies)", { cause: err });
  }
}

/** zstd-napi's native binding, loaded on the first call; throws an UnsupportedError when it cannot be loaded. */
export function zstdBinding(): ZstdBinding {
  return (binding ??= required<ZstdBinding>("zstd-napi/binding"));
}
