import type { Readable } from "node:stream";
import type { Digest } from "./digest.js";

/**
 * A content-addressed store of blobs (the cache's, or a temporary one for --no-cache).
 * Code that packs or fetches blobs is handed one; only the cache knows where it lives.
 * Blobs are written to `tempPath()` and `commit`ted under their digest once complete, so a
 * reader never sees a partial blob.
 */
export interface ContentStore {
  readonly root: string;
  pathOf(digest: Digest): string;
  /** The stored size of a blob, or undefined when it is absent. */
  has(digest: Digest): Promise<number | undefined>;
  open(digest: Digest): Promise<Readable>;
  /** A fresh temporary path inside the store, for a writer that learns the digest at the end. */
  tempPath(): Promise<string>;
  /** Moves a completed temporary file into place under its digest. */
  commit(tempPath: string, digest: Digest): Promise<void>;
}
