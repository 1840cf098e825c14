import { basename, dirname } from "node:path";
import type { Digest } from "../model/digest.js";
import { walkSources, type HostFingerprint, type SourceSpec, type SourceTree, type StatVisitor } from "../layer/sources.js";
import { HashQueue, type FileToHash } from "./hash-pool.js";
import { fingerprintText, type DirectoryTable, type StatIndex } from "./stat-index.js";

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
  /** Host path → digest, for the files the stat index vouched for. */
  known: Map<string, Digest>;
  /** The files it did not vouch for, being hashed: host path → where to record the digest (none: nowhere). */
  unvouched: Map<string, StatRow | undefined>;
  queue: HashQueue;
  /**
   * With deferred hashing (walkAndPrehash's `defer`): the unvouched files, not yet queued.
   * contentDigests takes what packing learnt of them and hashes only the rest.
   */
  deferred?: FileToHash[];
}

/** Where the stat index keeps one host file, with the fingerprint the walk saw, spelt once. */
interface StatRow {
  table: DirectoryTable;
  path: string;
  fingerprint: HostFingerprint;
  text: string;
}

/**
 * Walks `sources` with each file's fingerprint and, given the stat index, queues every file
 * it does not vouch for to be hashed while the walk goes on (on worker threads when there
 * is much to hash): a fresh checkout's walk and hashing overlap instead of following each
 * other. contentDigests() then takes the digests from the queue. With `defer`, they are only
 * listed: the layer is packed first, and contentDigests() takes what packing read.
 */
export async function walkAndPrehash(sources: readonly SourceSpec[], stat: StatIndex | undefined, signal?: AbortSignal, onStat?: StatVisitor, defer = false): Promise<KeyWalk> {
  if (stat === undefined) return { tree: await walkSources(sources, { signal, fingerprint: true, onStat }) };
  const tables = await tablesOf(sources, stat);
  // Made before the walk: its start is the time the stat index records every digest at (the racy rule).
  const prehashed: Prehashed = { known: new Map(), unvouched: new Map(), queue: new HashQueue(), ...(defer ? { deferred: [] } : {}) };
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
 * `learnt` (by host path: what packing the layer read) and hashes only the files not in it.
 */
export async function contentDigests(tree: SourceTree, sources: readonly SourceSpec[], stat: StatIndex | undefined, signal?: AbortSignal, prehashed?: Prehashed, learnt?: ReadonlyMap<string, Digest>): Promise<ContentDigests> {
  // A walk that prehashed has triaged every file it found; a tree walked without does so here.
  const triaged = prehashed ?? await triageTree(tree, sources, stat);
  const { known: digests, unvouched, queue } = triaged;
  for (const file of triaged.deferred?.splice(0) ?? []) {
    const digest = learnt?.get(file.path);
    if (digest !== undefined) digests.set(file.path, digest);
    else queue.add(file);
  }
  await queue.finish(signal, digests);
  for (const [host, row] of unvouched) row?.table.record(row.path, row.fingerprint, row.text, digests.get(host)!, queue.startedAtNs);
  if (stat !== undefined) for (const table of (await tablesOf(sources, stat)).values()) table.builtFrom();
  const hashed = unvouched.size;
  // Recorded: the rows (a fingerprint and its text per file) would otherwise be held while the layer is packed.
  unvouched.clear();
  return { digests, hashed };
}

/** Sorts the files of a tree walked without a stat index at hand, as walkAndPrehash does during its walk. */
async function triageTree(tree: SourceTree, sources: readonly SourceSpec[], stat: StatIndex | undefined): Promise<Prehashed> {
  const tables = stat === undefined ? undefined : await tablesOf(sources, stat);
  const out: Prehashed = { known: new Map(), unvouched: new Map(), queue: new HashQueue() };
  for (const [path, node] of tree.entries()) {
    if (node.type !== "file" || node.hostPath === undefined) continue;
    const fingerprint = tree.fingerprints.get(path);
    const row = fingerprint === undefined || tables === undefined ? undefined : statRow(node.hostPath, fingerprint, sources, tables);
    triage(out, node.hostPath, node.size, row);
  }
  return out;
}

/** One file: known, if its row vouches for it, else queued to be hashed (each host file once). */
function triage(into: Prehashed, hostPath: string, size: number, row: StatRow | undefined): void {
  if (into.known.has(hostPath) || into.unvouched.has(hostPath)) return;
  const digest = row?.table.lookup(row.path, row.text);
  if (digest !== undefined) {
    into.known.set(hostPath, digest);
    return;
  }
  into.unvouched.set(hostPath, row);
  if (into.deferred !== undefined) into.deferred.push({ path: hostPath, size });
  else into.queue.add({ path: hostPath, size });
}

/**
 * Whether no key was ever made from where these sources are (no table of theirs is known):
 * a first build from there. Reading every file for the key would then buy a cache hit only
 * for the same files built from elsewhere (a moved checkout), at the cost of reading them all twice.
 */
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
  return place && table && { table, path: place.path, fingerprint, text: fingerprintText(fingerprint) };
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
