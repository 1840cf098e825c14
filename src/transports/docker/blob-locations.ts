import type { Digest } from "../../model/digest.js";

/**
 * Where blobs were seen, remembered beyond this process, so that a push mounts a blob from
 * a sibling repository of the same registry instead of uploading it again. The registry
 * code is handed a book (the cache keeps one) and never depends on it: every answer is a
 * hint, a book that fails counts as empty, and a stale entry costs one refused mount
 * (after which it is forgotten).
 */
export interface BlobLocationBook {
  /** Repositories of `registry` said to hold `digest`, the most recently seen first. */
  repositoriesWith(registry: string, digest: Digest): Promise<readonly string[]>;
  /** `registry/repository` holds `digest`: it was pushed, found or pulled there. */
  remember(registry: string, repository: string, digest: Digest): Promise<void>;
  /** `registry/repository` turned out not to hold `digest` (a mount from it was declined). */
  forget(registry: string, repository: string, digest: Digest): Promise<void>;
}

const NO_BOOK: BlobLocationBook = {
  repositoriesWith: () => Promise.resolve([]),
  remember: () => Promise.resolve(),
  forget: () => Promise.resolve(),
};

/** `book` with its failures swallowed (or a book that knows nothing): a hint can only help. */
export function hintsFrom(book: BlobLocationBook | undefined): BlobLocationBook {
  if (!book) return NO_BOOK;
  return {
    repositoriesWith: (registry, digest) => quietly(() => book.repositoriesWith(registry, digest), []),
    remember: (registry, repository, digest) => quietly(() => book.remember(registry, repository, digest), undefined),
    forget: (registry, repository, digest) => quietly(() => book.forget(registry, repository, digest), undefined),
  };
}

async function quietly<T>(ask: () => Promise<T>, otherwise: T): Promise<T> {
  try {
    return await ask();
  } catch {
    return otherwise;
  }
}
