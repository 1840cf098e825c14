import { basename, dirname } from "node:path";
import type { Digest } from "../model/digest.js";
import { walkSources, type HostFingerprint, type SourceSpec, type SourceTree, type StatVisitor } from "../layer/sources.js";
import { HashQueue } from "./hash-pool.js";
import type { DirectoryTable, StatIndex } from "./stat-index.js";

/** What contentDigests found: a digest per regular file, and how many files it had to read. */
export interface ContentDigests {
  /** Image path of every regular file of the tree → the sha256 of its bytes. */
  digests: Map<string, Digest>;
  /** Files read and hashed (not vouched for by the stat index). */
  hashed: number;
}

/** A walk for a key, with the hashing of what the stat index cannot vouch for already under way. */
export interface KeyWalk {
  tree: SourceTree;
  /** With a stat index: what it vouched for during the walk, and the rest, queued. */
  prehashed?: Prehashed | undefined;
}

/** The content digests a walk for a key already has, or has under way. */
export interface Prehashed {
  /** Host path → digest, for the files the stat index vouched for. */
  known: Map<string, Digest>;
  /** The files it did not vouch for, being hashed. */
  queue: HashQueue;
}

/**
 * Walks `sources` with each file's fingerprint and, given the stat index, queues every file
 * it does not vouch for to be hashed while the walk goes on (on worker threads when there
 * is much to hash): a fresh checkout's walk and hashing overlap instead of following each
 * other. contentDigests() then takes the digests from the queue.
 */
export async function walkAndPrehash(sources: readonly SourceSpec[], stat: StatIndex | undefined, signal?: AbortSignal, onStat?: StatVisitor): Promise<KeyWalk> {
  if (stat === undefined) return { tree: await walkSources(sources, { signal, fingerprint: true, onStat }) };
  // Every table a file of these sources can be kept in (statPlace): each source and its parent.
  const tables = new Map<string, DirectoryTable>();
  for (const dir of new Set(sources.flatMap((s) => [s.from, dirname(s.from)]))) tables.set(dir, await stat.table(dir));
  const queue = new HashQueue();
  const known = new Map<string, Digest>();
  const onFile = (hostPath: string, size: number, fingerprint: HostFingerprint): void => {
    const place = statPlace(hostPath, sources);
    const digest = place === undefined ? undefined : tables.get(place.dir)?.lookup(place.path, fingerprint);
    if (digest !== undefined) known.set(hostPath, digest);
    else queue.add({ path: hostPath, size });
  };
  try {
    return { tree: await walkSources(sources, { signal, fingerprint: true, onFile, onStat }), prehashed: { known, queue } };
  } catch (err) {
    await queue.finish().catch(() => {}); // stops its workers
    throw err;
  }
}

/**
 * The content digest of every regular file of a walked tree: from the stat index where the
 * file's fingerprint is unchanged, else read and hashed (and recorded), by `prehashed` when
 * the walk queued it. Each host file is hashed at most once, however many image paths it
 * fills.
 */
export async function contentDigests(tree: SourceTree, sources: readonly SourceSpec[], stat: StatIndex | undefined, signal?: AbortSignal, prehashed?: Prehashed): Promise<ContentDigests> {
  const digests = new Map<string, Digest>();
  const byHostPath = new Map<string, Digest>();
  const tables = new Map<string, DirectoryTable>();
  /** Files the stat index cannot vouch for, each host file once, with where to record it. */
  const toHash = new Map<string, { size: number; table: DirectoryTable | undefined; path: string; fingerprint: HostFingerprint | undefined }>();
  const pending: Array<[imagePath: string, hostPath: string]> = [];
  for (const [path, node] of tree.entries()) {
    if (node.type !== "file" || node.hostPath === undefined) continue;
    const host = node.hostPath;
    const known = byHostPath.get(host) ?? prehashed?.known.get(host);
    if (known !== undefined) {
      digests.set(path, known);
      continue;
    }
    const fingerprint = tree.fingerprints.get(path);
    const place = fingerprint === undefined || stat === undefined ? undefined : statPlace(host, sources);
    let table: DirectoryTable | undefined;
    if (place !== undefined) {
      table = tables.get(place.dir);
      if (table === undefined) tables.set(place.dir, table = await stat!.table(place.dir));
      const digest = table.lookup(place.path, fingerprint!);
      if (digest !== undefined) {
        byHostPath.set(host, digest);
        digests.set(path, digest);
        continue;
      }
    }
    pending.push([path, host]);
    if (!toHash.has(host)) toHash.set(host, { size: node.size, table, path: place?.path ?? "", fingerprint });
  }
  // What the walk queued (started before anything here), plus anything it did not.
  const queue = prehashed?.queue ?? new HashQueue();
  for (const [host, { size }] of toHash) queue.add({ path: host, size });
  const hashed = await queue.finish(signal);
  for (const [host, where] of toHash) {
    const digest = hashed.get(host)!;
    byHostPath.set(host, digest);
    where.table?.record(where.path, where.fingerprint!, digest, queue.startedAtNs);
  }
  for (const [path, host] of pending) digests.set(path, byHostPath.get(host)!);
  return { digests, hashed: toHash.size };
}

/**
 * Where the stat index keeps a host file: the source directory it was walked from (the
 * deepest one holding it) and its path below that; a source that is one file is kept in its
 * parent's table. Undefined for a name a line of the index cannot hold (a newline or NUL).
 */
function statPlace(hostPath: string, sources: readonly SourceSpec[]): { dir: string; path: string } | undefined {
  if (/[\n\0]/.test(hostPath)) return undefined;
  let best: string | undefined;
  for (const { from } of sources) {
    if (hostPath.startsWith(`${from}/`) && (best === undefined || from.length > best.length)) best = from;
  }
  if (best !== undefined) return { dir: best, path: hostPath.slice(best.length + 1) };
  return { dir: dirname(hostPath), path: basename(hostPath) };
}
