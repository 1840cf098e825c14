import { mkdir, readdir, rm, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { digestHex, isDigest, type Digest } from "../model/digest.js";

/**
 * The cache's book of where blobs were seen: `<cache>/locations/REGISTRY/HEX/REPOSITORY`,
 * one empty file per registry, blob and repository that holds it (names percent-encoded,
 * so `team/app` is one file name), its mtime the last time it was seen there. Pushes and
 * pulls write it; a push reads it to mount a blob from a sibling repository instead of
 * uploading it again.
 *
 * Why a file per fact: remembering is creating (or touching) a file and forgetting is
 * removing one, each atomic on its own, so concurrent gantry processes never read a
 * half-written record nor lose each other's facts, with no lock and no read-modify-write.
 * Everything here is a hint: a failure to read or write is swallowed (the push uploads, as
 * it would have without the book), and a stale fact costs one declined mount, after which
 * the push forgets it. Deleting the directory loses nothing but mounts.
 */

/** Repositories listed for one blob at most: a push tries the first anyway. */
const MAX_LISTED = 16;
/** The longest file name most file systems take. */
const MAX_NAME = 255;

/**
 * The book of blob locations kept in `root` (`<cache>/locations`). Nothing here throws: a fact
 * that cannot be read is unknown, one that cannot be written is left out.
 */
export class BlobLocationsFile {
  constructor(readonly root: string) {}

  /** The repositories of `registry` known to hold `digest`, most recently seen first (16 at most). */
  async repositoriesWith(registry: string, digest: Digest): Promise<readonly string[]> {
    const dir = this.dirOf(registry, digest);
    if (dir === undefined) return [];
    try {
      const names = (await readdir(dir)).slice(0, MAX_LISTED);
      const seen = await Promise.all(names.map(async (name) => {
        const mtime = await stat(join(dir, name)).then((s) => s.mtimeMs, () => undefined);
        return { repository: decode(name), mtime };
      }));
      return seen
        .filter((s): s is { repository: string; mtime: number } => s.repository !== undefined && s.mtime !== undefined)
        .sort((a, b) => b.mtime - a.mtime)
        .map((s) => s.repository);
    } catch {
      return [];
    }
  }

  /** Records that `repository` of `registry` holds `digest`, as seen now. */
  async remember(registry: string, repository: string, digest: Digest): Promise<void> {
    const path = this.pathOf(registry, repository, digest);
    if (path === undefined) return;
    const now = new Date();
    try {
      await utimes(path, now, now);
    } catch {
      try {
        await mkdir(this.dirOf(registry, digest)!, { recursive: true });
        await writeFile(path, "");
      } catch {
        /* a hint not written: the next push uploads, as it would have */
      }
    }
  }

  /** Forgets that `repository` holds `digest` (a mount of it was declined). */
  async forget(registry: string, repository: string, digest: Digest): Promise<void> {
    const path = this.pathOf(registry, repository, digest);
    if (path !== undefined) await rm(path, { force: true }).catch(() => {});
  }

  private dirOf(registry: string, digest: Digest): string | undefined {
    const host = encode(registry);
    return host !== undefined && isDigest(digest) ? join(this.root, host, digestHex(digest)) : undefined;
  }

  private pathOf(registry: string, repository: string, digest: Digest): string | undefined {
    const dir = this.dirOf(registry, digest);
    const name = encode(repository);
    return dir !== undefined && name !== undefined ? join(dir, name) : undefined;
  }
}

/** A name as one safe file name, or undefined when it cannot be one. */
function encode(name: string): string | undefined {
  const encoded = encodeURIComponent(name);
  return encoded === "" || encoded === "." || encoded === ".." || encoded.length > MAX_NAME ? undefined : encoded;
}

function decode(name: string): string | undefined {
  try {
    return decodeURIComponent(name);
  } catch {
    return undefined;
  }
}

/** The book of the cache at `cacheDir`. */
export function blobLocationsIn(cacheDir: string): BlobLocationsFile {
  return new BlobLocationsFile(join(cacheDir, "locations"));
}
