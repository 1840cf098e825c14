import type { Digest } from "./digest.js";

/**
 * What a caller remembers of the archives it wrote, so that writing the same archive to the
 * same file again can be skipped: a rebuild with nothing changed would otherwise copy
 * every blob into a file that already holds exactly those bytes. The cache keeps one
 * (cache/written-archives.ts); without it every archive is written.
 */
export interface WrittenArchives {
  /**
   * The size of the file at `path` when it still holds the archive `identity` as written
   * (archive/archive-tar.ts names an archive by its entries); undefined otherwise.
   */
  unchanged(path: string, identity: Digest, signal?: AbortSignal): Promise<number | undefined>;
  /** Records that `path` was just written with the archive `identity`, whose bytes have `written` as sha256 and size. Best effort. */
  remember(path: string, identity: Digest, written: { digest: Digest; size: number }): Promise<void>;
}
