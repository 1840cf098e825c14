import { readFile, readdir, rm, stat, utimes } from "node:fs/promises";
import { join } from "node:path";
import { ioError } from "../model/errors.js";

/**
 * `gantry cache prune`: the local cache shrunk by age and by size. Every use of a blob or
 * of a layer's facts sets its mtime (touchUsed), so a file's mtime is when it was last
 * used, on any filesystem, atime or not. Pruning then:
 *
 * 1. removes blobs, facts, stat tables, source snapshots, lookup journals and
 *    written-archive records not used for `maxAgeMs`;
 * 2. while the blobs left weigh more than `maxBytes`, removes the least recently used;
 * 3. drops the layer index entries whose blob is gone (an entry is a pointer, never data).
 *
 * Nothing removed is ever needed for correctness: a missing blob is packed or fetched
 * again, a missing table means hashing once more. A build running meanwhile may lose a
 * blob it had just found and fail on reading it; prune when no build uses the cache.
 */

/** What pruneCache removes from `cacheDir`; a limit left out is not applied. */
export interface PruneOptions {
  cacheDir: string;
  /** Files unused for longer are removed. */
  maxAgeMs?: number;
  /** The blobs' total size is brought under this, least recently used first. */
  maxBytes?: number;
  /** Only count what would go. */
  dryRun?: boolean;
  /** The time ages are measured from, in milliseconds since the epoch; now when absent. */
  now?: number;
}

/** What pruneCache removed (or, on a dry run, would remove) and the blobs it kept; bytes are blob bytes. */
export interface PruneResult {
  cacheDir: string;
  /** `records`: source snapshots, lookup journals and written-archive records. */
  removed: { blobs: number; bytes: number; indexEntries: number; facts: number; statTables: number; records: number };
  kept: { blobs: number; bytes: number };
  dryRun: boolean;
}

/** Marks a cache file used now (best effort: a cache on a read-only disk still serves). */
export async function touchUsed(path: string): Promise<void> {
  const now = new Date();
  await utimes(path, now, now).catch(() => {});
}

interface CacheFile { path: string; size: number; usedMs: number }

async function filesIn(dir: string): Promise<CacheFile[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw ioError(`the cache directory ${dir}`, err);
  }
  const out: CacheFile[] = [];
  for (const name of names) {
    const st = await stat(join(dir, name)).catch(() => undefined);
    if (st?.isFile()) out.push({ path: join(dir, name), size: st.size, usedMs: st.mtimeMs });
  }
  return out;
}

/**
 * Prunes the cache at `opts.cacheDir` as described above; a limit not given is not applied.
 * A missing cache directory counts as empty; one that cannot be listed throws IoError.
 */
export async function pruneCache(opts: PruneOptions): Promise<PruneResult> {
  const now = opts.now ?? Date.now();
  const dryRun = opts.dryRun === true;
  const oldest = opts.maxAgeMs === undefined ? -Infinity : now - opts.maxAgeMs;
  const remove = async (f: CacheFile): Promise<void> => {
    if (!dryRun) await rm(f.path, { force: true });
  };
  const removed = { blobs: 0, bytes: 0, indexEntries: 0, facts: 0, statTables: 0, records: 0 };

  const blobs = (await filesIn(join(opts.cacheDir, "blobs", "sha256"))).sort((a, b) => a.usedMs - b.usedMs);
  const kept: CacheFile[] = [];
  let keptBytes = blobs.reduce((n, b) => n + b.size, 0);
  for (const blob of blobs) {
    if (blob.usedMs < oldest || (opts.maxBytes !== undefined && keptBytes > opts.maxBytes)) {
      await remove(blob);
      removed.blobs++;
      removed.bytes += blob.size;
      keptBytes -= blob.size;
    } else {
      kept.push(blob);
    }
  }
  const keptNames = new Set(kept.map((b) => b.path.slice(b.path.lastIndexOf("/") + 1)));

  for (const entry of await filesIn(join(opts.cacheDir, "layers"))) {
    const digest = await readFile(entry.path, "utf8").then((t) => (JSON.parse(t) as { digest?: unknown }).digest, () => undefined);
    if (typeof digest === "string" && keptNames.has(digest.slice("sha256:".length))) continue;
    await remove(entry);
    removed.indexEntries++;
  }
  for (const facts of await filesIn(join(opts.cacheDir, "facts"))) {
    if (facts.usedMs >= oldest) continue;
    await remove(facts);
    removed.facts++;
  }
  for (const table of await filesIn(join(opts.cacheDir, "stat"))) {
    if (table.usedMs >= oldest) continue;
    await remove(table);
    removed.statTables++;
  }
  for (const sub of ["snapshots", "lookups", "outputs"]) {
    for (const record of await filesIn(join(opts.cacheDir, sub))) {
      if (record.usedMs >= oldest) continue;
      await remove(record);
      removed.records++;
    }
  }
  return { cacheDir: opts.cacheDir, removed, kept: { blobs: kept.length, bytes: keptBytes }, dryRun };
}
