import { basename, dirname } from "node:path";
import type { Digest } from "../model/digest.js";
import { walkSources, type HostFingerprint, type SourceSpec, type SourceTree, type StatVisitor } from "../layer/sources.js";
import { HashQueue } from "./hash-pool.js";
import type { DirectoryTable, StatIndex } from "./stat-index.js";

/** What contentDigests found: a digest per regular file, and how many files it had to read. */
export interface ContentDigests {
  /**
   * Host path of every regular file of the tree → the sha256 of its bytes (keyed by host
   * path, as the files are read: one entry however many image paths a file fills). It may
   * also hold files of the walk that the tree, a part of it, left out.
   */
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

/** The content digests a walk for a key already has, or has under way: one entry per walked file. */
export interface Prehashed {
  /** Host path → digest, for the files the stat index vouched for (and, triaged after packing, those packing read). */
  known: Map<string, Digest>;
  /** The files it did not vouch for, being hashed: host path → where to record the digest (none: nowhere). */
  unvouched: Map<string, StatRow | undefined>;
  queue: HashQueue;
  /**
   * Set by a walk that deferred its hashing (walkAndPrehash's `defer`): nothing is triaged
   * yet. contentDigests does it once the layer is packed, taking what packing read.
   */
  untriaged?: true;
}

/** Where the stat index keeps one host file, with the fingerprint the walk saw. */
interface StatRow {
  table: DirectoryTable;
  path: string;
  fingerprint: HostFingerprint;
}

/**
 * Walks `sources` with each file's fingerprint and, given the stat index, queues every file
 * it does not vouch for to be hashed while the walk goes on (on worker threads when there
 * is much to hash): a fresh checkout's walk and hashing overlap instead of following each
 * other. contentDigests() then takes the digests from the queue. With `defer`, nothing is
 * queued: the layer is packed first, and contentDigests() takes what packing read.
 */
export async function walkAndPrehash(sources: readonly SourceSpec[], stat: StatIndex | undefined, signal?: AbortSignal, onStat?: StatVisitor, defer = false): Promise<KeyWalk> {
  if (stat === undefined) return { tree: await walkSources(sources, { signal, fingerprint: true, onStat }) };
  // Made before the walk: its queue's start is the time the stat index records every digest
  // at (the racy rule), packing's reads included. Its workers start only once files are queued.
  const prehashed = newPrehashed();
  if (defer) {
    // Only the tree is held while the layer is packed, not a row per file.
    prehashed.untriaged = true;
    return { tree: await walkSources(sources, { signal, fingerprint: true, onStat }), prehashed };
  }
  const tables = await tablesOf(sources, stat);
  const onFile = (hostPath: string, size: number, fingerprint: HostFingerprint): void => {
    triage(prehashed, hostPath, size, statRow(hostPath, fingerprint, sources, tables));
  };
  try {
    return { tree: await walkSources(sources, { signal, fingerprint: true, onFile, onStat }), prehashed };
  } catch (err) {
    await prehashed.queue.finish().catch(() => {}); // stops its workers
    throw err;
  }
}

/**
 * The content digest of every regular file of a walked tree: from the stat index where the
 * file's fingerprint is unchanged, else read and hashed (and recorded), by `prehashed` when
 * the walk queued it (its maps are then taken over). Each host file is hashed at most once,
 * however many image paths it fills. A walk that deferred its hashing takes the digests in
 * `learnt` (by image path: what packing the layer read) and hashes only the files not in it.
 */
export async function contentDigests(tree: SourceTree, sources: readonly SourceSpec[], stat: StatIndex | undefined, signal?: AbortSignal, prehashed?: Prehashed, learnt?: ReadonlyMap<string, Digest>): Promise<ContentDigests> {
  // A walk that prehashed has triaged every file it found; a tree walked without (or one
  // that deferred) does so here.
  const triaged = prehashed !== undefined && prehashed.untriaged === undefined ? prehashed
    : await triageTree(tree, sources, stat, prehashed ?? newPrehashed(), learnt);
  const { known: digests, unvouched, queue } = triaged;
  await queue.finish(signal, digests);
  for (const [host, row] of unvouched) row?.table.record(row.path, row.fingerprint, digests.get(host)!, queue.startedAtNs);
  if (stat !== undefined) for (const table of (await tablesOf(sources, stat)).values()) table.builtFrom();
  const hashed = unvouched.size;
  // Recorded: the rows (one per file) would otherwise be held while the layer is packed.
  unvouched.clear();
  return { digests, hashed };
}

function newPrehashed(): Prehashed {
  return { known: new Map(), unvouched: new Map(), queue: new HashQueue() };
}

/**
 * Sorts the files of a tree walked without a stat index at hand (or whose walk deferred)
 * into `out`, as walkAndPrehash does during its walk.
 */
async function triageTree(tree: SourceTree, sources: readonly SourceSpec[], stat: StatIndex | undefined, out: Prehashed, learnt: ReadonlyMap<string, Digest> | undefined): Promise<Prehashed> {
  const tables = stat === undefined ? undefined : await tablesOf(sources, stat);
  for (const [path, node] of tree.entries()) {
    if (node.type !== "file" || node.hostPath === undefined) continue;
    const fingerprint = tree.fingerprints.get(path);
    const row = fingerprint === undefined || tables === undefined ? undefined : statRow(node.hostPath, fingerprint, sources, tables);
    triage(out, node.hostPath, node.size, row, learnt?.get(path));
  }
  return out;
}

/**
 * One file: known, if its row vouches for it; else recorded at once from what packing read
 * of it (`learnt`), or queued to be hashed and recorded later (each host file once). What
 * packing read needs no row kept: 100,000 of them, and the map that held them, were garbage
 * enough to grow a first build's heap by tens of MB.
 */
function triage(into: Prehashed, hostPath: string, size: number, row: StatRow | undefined, learnt?: Digest): void {
  if (into.known.has(hostPath) || into.unvouched.has(hostPath)) return;
  const digest = row?.table.lookup(row.path, row.fingerprint);
  if (digest !== undefined) {
    into.known.set(hostPath, digest);
    return;
  }
  if (learnt !== undefined) {
    into.known.set(hostPath, learnt);
    row?.table.record(row.path, row.fingerprint, learnt, into.queue.startedAtNs);
    return;
  }
  into.unvouched.set(hostPath, row);
  into.queue.add({ path: hostPath, size });
}

/** Whether no key was ever made from where these sources are: no table of theirs is known. */
export async function neverBuiltFrom(sources: readonly SourceSpec[], stat: StatIndex): Promise<boolean> {
  for (const table of (await tablesOf(sources, stat)).values()) if (table.known) return false;
  return true;
}

/** Every table a file of these sources can be kept in (statPlace): each source's and its parent's. */
async function tablesOf(sources: readonly SourceSpec[], stat: StatIndex): Promise<Map<string, DirectoryTable>> {
  const tables = new Map<string, DirectoryTable>();
  for (const dir of new Set(sources.flatMap((s) => [s.from, dirname(s.from)]))) tables.set(dir, await stat.table(dir));
  return tables;
}

function statRow(hostPath: string, fingerprint: HostFingerprint, sources: readonly SourceSpec[], tables: ReadonlyMap<string, DirectoryTable>): StatRow | undefined {
  const place = statPlace(hostPath, sources);
  const table = place && tables.get(place.dir);
  return place && table && { table, path: place.path, fingerprint };
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
