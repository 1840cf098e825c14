import type { BigIntStats } from "node:fs";
import { newHasher } from "../model/digest.js";
import { statEntry } from "../layer/sources.js";
import { isRacyChange } from "./stat-index.js";

/**
 * The pieces of a source snapshot (source-snapshot.ts). A walk of the sources is cut into
 * segments, each an entry at depth 0 or 1 (a source's own path, or a name directly inside a
 * directory source) with everything below it; a snapshot hashes each segment on its own and
 * then the segments' digests in walk order. So the same snapshot can be made by one thread
 * visiting the walk in order, or by several threads each taking whole segments: the bytes
 * depend on the sources alone, never on the number of threads.
 */

/** Entries hashed per update: the numbers of a batch go to the hash as one buffer. */
const BATCH = 512;
const NUMBERS_PER_ENTRY = 8;
/** The bytes of one segment's digest (sha256). */
export const SEGMENT_DIGEST_BYTES = 32;

/** Hashes what lstat says of the entries of one segment, in walk order. */
export class SegmentHasher {
  private hash = newHasher();
  private readonly numbers = new BigUint64Array(BATCH * NUMBERS_PER_ENTRY);
  private names: string[] = [];
  /** Whether an entry changed within the racy window of `startedAtNs`: the snapshot must not be recorded. */
  racy = false;
  /** Entries hashed, over every segment. */
  entries = 0;

  /** `startedAtNs`: the wall-clock time before the walk's first lstat. */
  constructor(readonly startedAtNs: bigint) {}

  /** Adds one entry: path, device, inode, st_mode, link count, size, mtime and ctime in nanoseconds, device number. */
  add(hostPath: string, st: BigIntStats): void {
    const at = this.names.length * NUMBERS_PER_ENTRY;
    const n = this.numbers;
    n[at] = st.dev;
    n[at + 1] = st.ino;
    n[at + 2] = st.mode;
    n[at + 3] = st.nlink;
    n[at + 4] = st.size;
    n[at + 5] = st.mtimeNs;
    n[at + 6] = st.ctimeNs;
    n[at + 7] = st.rdev;
    this.names.push(hostPath);
    this.entries++;
    if (!this.racy && isRacyChange(st.ctimeNs, this.startedAtNs)) this.racy = true;
    if (this.names.length === BATCH) this.flush();
  }

  /** The digest of the segment added since the last call; the next entry starts a new segment. */
  endSegment(): Buffer {
    this.flush();
    const digest = this.hash.digest();
    this.hash = newHasher();
    return digest;
  }

  private flush(): void {
    if (this.names.length === 0) return;
    this.hash.update(new Uint8Array(this.numbers.buffer, 0, this.names.length * NUMBERS_PER_ENTRY * 8));
    // No host path holds a NUL, so the names cannot run into each other.
    this.hash.update(`${this.names.join("\0")}\0`);
    this.names = [];
  }
}

/** The words of a SegmentJob's `control`, an Int32Array shared by its threads. */
export const Control = {
  /** The index of the next segment a thread may take. */
  Next: 0,
  /** Set to 1 once any entry was racy. */
  Racy: 1,
  /** Set to 1 once any segment failed (a path unreadable, a reserved name): the snapshot is a miss. */
  Failed: 2,
  /** Entries hashed by every thread together. */
  Entries: 3,
} as const;
/** The length of a SegmentJob's `control`, in Int32 words. */
export const CONTROL_WORDS = 4;

/**
 * Segments at depth 1 shared by several threads: each takes the next untaken index and
 * writes that segment's digest at its place in `digests`.
 */
export interface SegmentJob {
  /** The host path of each segment (an entry at depth 1). */
  paths: readonly string[];
  startedAtNs: bigint;
  /** CONTROL_WORDS Int32 words (see Control), shared. */
  control: SharedArrayBuffer;
  /** SEGMENT_DIGEST_BYTES per segment, shared. */
  digests: SharedArrayBuffer;
}

/**
 * Takes segments of `job` until none is left or one fails, hashing each. Runs on every
 * thread of a parallel snapshot, the calling one too.
 */
export function hashSegments(job: SegmentJob, signal?: AbortSignal): void {
  const control = new Int32Array(job.control);
  const digests = new Uint8Array(job.digests);
  const hasher = new SegmentHasher(job.startedAtNs);
  const visit = (hostPath: string, st: BigIntStats): void => hasher.add(hostPath, st);
  for (;;) {
    if (Atomics.load(control, Control.Failed) !== 0) return;
    const i = Atomics.add(control, Control.Next, 1);
    if (i >= job.paths.length) break;
    try {
      statEntry(job.paths[i]!, 1, visit, signal);
    } catch {
      // The build's own walk of these sources names what is wrong.
      Atomics.store(control, Control.Failed, 1);
      return;
    }
    digests.set(hasher.endSegment(), i * SEGMENT_DIGEST_BYTES);
  }
  if (hasher.racy) Atomics.store(control, Control.Racy, 1);
  Atomics.add(control, Control.Entries, hasher.entries);
}
