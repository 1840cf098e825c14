import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { Compression } from "../model/mediatypes.js";
import { FRAME_SIZE } from "../compression/zstd-block.js";
import { BLOCK_SIZE } from "../compression/gzip-block.js";

/**
 * The versions a cache key must hold: gantry's own (its tar writer, its tree semantics)
 * and the compressor library's, since another version of either may make other bytes.
 */

/** The library that writes compressed bytes, and its version: another version may write other bytes. */
export function compressorEngine(compression: Compression): string {
  // The block and frame sizes shape the bytes as much as the libraries do (gzip-block.ts, zstd-block.ts).
  if (compression === "gzip") return `zlib ${process.versions.zlib ?? "unknown"}, independent blocks of ${BLOCK_SIZE} bytes`;
  if (compression === "zstd") return `zstd-napi ${packageVersion(() => createRequire(import.meta.url)("zstd-napi/package.json"))}, frames of ${FRAME_SIZE} bytes`;
  return "none";
}

let ownVersion: string | undefined;
/** gantry's own version, from its package.json (read once); "unknown" when it cannot be read. */
export function gantryVersion(): string {
  ownVersion ??= packageVersion(() => JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")));
  return ownVersion;
}

function packageVersion(load: () => unknown): string {
  try {
    const version = (load() as { version?: unknown }).version;
    return typeof version === "string" ? version : "unknown";
  } catch {
    return "unknown";
  }
}
