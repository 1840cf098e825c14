import type { BlobStore } from "../cache/blob-store.js";
import type { ProgressListener } from "../model/progress.js";
import type { ClientOptions } from "./client.js";

/** Options every registry operation takes. */
export interface RegistryOptions extends ClientOptions {
  /** With a store, pulled blobs, manifests and configs are kept by digest and read from it afterwards. */
  cache?: BlobStore;
  onProgress?: ProgressListener;
}

/** Sizes in bytes for humans: "12.3 MB". */
export function formatSize(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) { value /= 1000; unit++; }
  return `${value.toFixed(1)} ${units[unit]}`;
}

export function shortDigest(digest: string): string {
  return digest.slice(0, "sha256:".length + 12);
}
