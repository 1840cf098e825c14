import { lstatSync, type BigIntStats } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { digestHex, newHasher, sha256 } from "../model/digest.js";
import { throwIfAborted } from "../model/errors.js";
import { childPath, sourceChildNames, type SourceSpec, type StatVisitor } from "../layer/sources.js";
import { CONTROL_WORDS, Control, SEGMENT_DIGEST_BYTES, SegmentHasher, hashSegments, type SegmentJob } from "./snapshot-segments.js";
import type { IndexKey } from "./layer-index.js";
import { readSealed, writeSealed } from "./sealed-file.js";
import { wallClockNs } from "./stat-index.js";
import { takePrestartedWorker } from "../util/prestarted-worker.js";
import { SNAPSHOT_WORKER_URL, rememberThreadsWanted } from "./snapshot-prestart.js";

/**
 * Source snapshots: the layer key an unchanged set of sources had, found from a bare
 * `lstat` walk. A key hashes every walked entry and the content digest of every file
 * (content-key.ts), which on a tree of tens of thousands of entries costs several times the
 * walk itself. A snapshot hashes what lstat says of every host entry of the sources, in
 * walk order: path, device, inode, st_mode, link count, size, mtime and ctime in
 * nanoseconds, and device number; it does so segment by segment (snapshot-segments.ts), so
 * that a large tree is walked on every core when only its snapshot is wanted. If the
 * snapshot is the one recorded with a key, every input of that key is unchanged, so the
 * key is too:
 *
 * - the names, types, modes and sizes are in the snapshot;
 * - a file's bytes and a symlink's target cannot change without moving its ctime, which no
 *   user call sets back (the stat index's argument, stat-index.ts), with git's racy rule:
 *   a snapshot holding an entry changed within one clock tick of the walk is not recorded;
 * - hardlink groups follow from the inodes and link counts.
 *
 * `<cache>/snapshots/<id>.json` holds `{ snapshot, key, entries }` for one recipe, sealed
 * (sealed-file.ts): the id hashes the
 * recipe's key text (content-key.ts recipeText: versions, the layers below, destinations,
 * perms, owner, mtime, compression) and the host paths of its sources. The last build of a
 * recipe wins; a record that is unreadable or does not match is a miss, never a wrong key.
 */

const FORMAT = "gantry source snapshot 3";
/** Entries a recorded snapshot must have had for the next one to be made on several threads: below, starting a worker costs more than it saves. */
const PARALLEL_ENTRIES = 10_000;
/** Threads a snapshot is made on at most: the lstat calls stop scaling past a few. */
const MAX_THREADS = 4;

/** Hashes what lstat says of each entry of a walk, visited in walk order; see above. */
export class SnapshotHasher {
  private readonly segments: SegmentHasher;
  private readonly outer = newHasher();
  private inSegment = false;

  /** `startedAtNs`: the wall-clock time before the walk's first lstat. */
  constructor(startedAtNs: bigint = wallClockNs()) {
    this.segments = new SegmentHasher(startedAtNs);
  }

  /** Whether an entry changed within the racy window of the walk's start: the snapshot must not be recorded. */
  get racy(): boolean {
    return this.segments.racy;
  }

  get entries(): number {
    return this.segments.entries;
  }

  /** The visitor to walk with. */
  readonly visit: StatVisitor = (hostPath: string, st: BigIntStats, depth: number): void => {
    if (depth <= 1) this.endSegment();
    this.inSegment = true;
    this.segments.add(hostPath, st);
  };

  private endSegment(): void {
    if (this.inSegment) this.outer.update(this.segments.endSegment());
    this.inSegment = false;
  }

  /** The snapshot's 64 hex digits (call once, after the walk). */
  digest(): string {
    this.endSegment();
    return this.outer.digest("hex");
  }
}

/** A snapshot of sources as they are now. */
export interface Snapshot {
  digest: string;
  racy: boolean;
  entries: number;
}

/**
 * The snapshot of `sources` now: one lstat walk, on `threads` threads (the calling one and
 * workers, which take whole segments: snapshot-segments.ts). Undefined when a source
 * cannot be walked: the build's own walk then says why.
 */
export async function snapshotOf(sources: readonly SourceSpec[], opts: { threads?: number; signal?: AbortSignal | undefined } = {}): Promise<Snapshot | undefined> {
  const startedAtNs = wallClockNs();
  // The sources' own paths are segments of their own, hashed here; the names directly inside
  // a directory source are shared out. `order` holds each segment's digest or its place in `paths`.
  const roots = new SegmentHasher(startedAtNs);
  const order: Array<Buffer | number> = [];
  const paths: string[] = [];
  try {
    for (const source of sources) {
      const st = lstatSync(source.from, { bigint: true });
      roots.add(source.from, st);
      order.push(roots.endSegment());
      if (!st.isDirectory()) continue;
      for (const name of sourceChildNames(source.from)) order.push(paths.push(childPath(source.from, name)) - 1);
    }
  } catch {
    return undefined;
  }
  const job: SegmentJob = {
    paths, startedAtNs,
    control: new SharedArrayBuffer(CONTROL_WORDS * 4),
    digests: new SharedArrayBuffer(paths.length * SEGMENT_DIGEST_BYTES),
  };
  const workers = Math.min(Math.max(1, opts.threads ?? 1), MAX_THREADS, paths.length) - 1;
  const others = Array.from({ length: workers }, () => runWorker(job));
  hashSegments(job, opts.signal);
  const finished = await Promise.all(others);
  throwIfAborted(opts.signal);
  const control = new Int32Array(job.control);
  if (control[Control.Failed] !== 0 || finished.includes(false)) return undefined;
  const outer = newHasher();
  const digests = Buffer.from(job.digests);
  for (const o of order) outer.update(typeof o === "number" ? digests.subarray(o * SEGMENT_DIGEST_BYTES, (o + 1) * SEGMENT_DIGEST_BYTES) : o);
  return { digest: outer.digest("hex"), racy: roots.racy || control[Control.Racy] !== 0, entries: roots.entries + control[Control.Entries]! };
}

/**
 * Runs one worker on `job`, the one the command started for this if there is one: true once
 * it has taken its last segment, false if it failed to run.
 */
function runWorker(job: SegmentJob): Promise<boolean> {
  return new Promise((resolve) => {
    const worker = takePrestartedWorker(SNAPSHOT_WORKER_URL) ?? new Worker(SNAPSHOT_WORKER_URL, { execArgv: [] });
    worker.once("message", () => resolve(true));
    worker.once("error", () => resolve(false));
    worker.once("exit", () => resolve(false));
    worker.postMessage(job);
  });
}

/** `<cache>/snapshots`: recipe → the snapshot of its sources and the key they gave. */
export class SourceSnapshots {
  /** Whether a snapshot this build looked up or recorded is big enough for several threads. */
  private threadsWanted = false;
  /** Entries a recorded snapshot must have had for the next one to be made on several threads. */
  private readonly parallelEntries: number;

  constructor(readonly root: string, opts: { parallelEntries?: number } = {}) {
    this.parallelEntries = opts.parallelEntries ?? PARALLEL_ENTRIES;
  }

  private pathOf(recipeText: string, sources: readonly SourceSpec[]): string {
    const id = sha256(`${FORMAT}\n${recipeText}\n${JSON.stringify(sources.map((s) => [s.from, s.to]))}`);
    return join(this.root, `${digestHex(id)}.json`);
  }

  /**
   * The key recorded for the recipe if its sources still give the recorded snapshot (an
   * lstat walk of them, made only when there is a record to compare with).
   */
  async unchangedKey(recipeText: string, sources: readonly SourceSpec[], signal?: AbortSignal): Promise<IndexKey | undefined> {
    const sealed = await readSealed(this.pathOf(recipeText, sources), FORMAT);
    const { snapshot, key, entries } = (sealed?.body ?? {}) as Record<string, unknown>;
    if (!isHex(snapshot) || !isHex(key)) return undefined;
    const parallel = typeof entries === "number" && entries >= this.parallelEntries;
    if (parallel) this.threadsWanted = true;
    const threads = parallel ? availableParallelism() : 1;
    const now = await snapshotOf(sources, { threads, signal });
    if (now === undefined || now.racy || now.digest !== snapshot) return undefined;
    return { hex: key };
  }

  /**
   * Records that `sources`, as `walked` saw them while the key was made, gave `key`. Not
   * recorded when the walk saw a racy entry. Best effort: a record that cannot be written
   * costs the next build a full walk.
   */
  async record(recipeText: string, sources: readonly SourceSpec[], walked: SnapshotHasher, key: IndexKey): Promise<void> {
    if (walked.racy) return;
    if (walked.entries >= this.parallelEntries) this.threadsWanted = true;
    // The next build walks the sources in full.
    await writeSealed(this.pathOf(recipeText, sources), FORMAT, { snapshot: walked.digest(), key: key.hex, entries: walked.entries }).catch(() => {});
  }

  /**
   * Once the build's layers are made: tells the next command whether to start a snapshot's
   * second thread ahead of it (snapshot-prestart.ts).
   */
  rememberThreads(): Promise<void> {
    return rememberThreadsWanted(this.root, this.threadsWanted);
  }
}

function isHex(value: unknown): value is string {
  return typeof value === "string" && /^[0-9a-f]{64}$/.test(value);
}
