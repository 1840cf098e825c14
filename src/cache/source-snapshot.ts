import type { BigIntStats } from "node:fs";
import { join } from "node:path";
import { digestHex, hasherDigest, newHasher, sha256 } from "../model/digest.js";
import { statSources, type SourceSpec, type StatVisitor } from "../layer/sources.js";
import type { IndexKey } from "./layer-index.js";
import { readSealed, writeSealed } from "./sealed-file.js";
import { isRacyChange, wallClockNs } from "./stat-index.js";

/**
 * Source snapshots: the layer key an unchanged set of sources had, found from a bare
 * `lstat` walk. A key hashes every walked entry and the content digest of every file
 * (content-key.ts), which on a tree of tens of thousands of entries costs several times the
 * walk itself. A snapshot is one sha256 over what lstat says of every host entry of the
 * sources, in walk order: path, device, inode, st_mode, link count, size, mtime and ctime
 * in nanoseconds, and device number. If the snapshot is the one recorded with a key, every
 * input of that key is unchanged, so the key is too:
 *
 * - the names, types, modes and sizes are in the snapshot;
 * - a file's bytes and a symlink's target cannot change without moving its ctime, which no
 *   user call sets back (the stat index's argument, stat-index.ts), with git's racy rule:
 *   a snapshot holding an entry changed within one clock tick of the walk is not recorded;
 * - hardlink groups follow from the inodes and link counts.
 *
 * `<cache>/snapshots/<id>.json` holds `{ snapshot, key }` for one recipe, sealed
 * (sealed-file.ts): the id hashes the
 * recipe's key text (content-key.ts recipeText: versions, the layers below, destinations,
 * perms, owner, mtime, compression) and the host paths of its sources. The last build of a
 * recipe wins; a record that is unreadable or does not match is a miss, never a wrong key.
 */

const FORMAT = "gantry source snapshot 2";
/** Entries hashed per update: the numbers of a batch go to the hash as one buffer. */
const BATCH = 512;
const NUMBERS_PER_ENTRY = 8;

/** Hashes what lstat says of each entry of a walk; see above. */
export class SnapshotHasher {
  private readonly hash = newHasher();
  private readonly numbers = new BigUint64Array(BATCH * NUMBERS_PER_ENTRY);
  private names: string[] = [];
  /** Whether an entry changed within the racy window of the walk's start: the snapshot must not be recorded. */
  racy = false;
  entries = 0;

  /** `startedAtNs`: the wall-clock time before the walk's first lstat. */
  constructor(readonly startedAtNs: bigint = wallClockNs()) {}

  /** The visitor to walk with. */
  readonly visit: StatVisitor = (hostPath: string, st: BigIntStats): void => {
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
  };

  private flush(): void {
    if (this.names.length === 0) return;
    this.hash.update(new Uint8Array(this.numbers.buffer, 0, this.names.length * NUMBERS_PER_ENTRY * 8));
    // No host path holds a NUL, so the names cannot run into each other.
    this.hash.update(`${this.names.join("\0")}\0`);
    this.names = [];
  }

  /** The snapshot's 64 hex digits (call once, after the walk). */
  digest(): string {
    this.flush();
    return digestHex(hasherDigest(this.hash));
  }
}

/** The snapshot of `sources` now: one lstat walk. */
export function snapshotOf(sources: readonly SourceSpec[], signal?: AbortSignal): SnapshotHasher {
  const hasher = new SnapshotHasher();
  statSources(sources, hasher.visit, signal);
  return hasher;
}

/** `<cache>/snapshots`: recipe → the snapshot of its sources and the key they gave. */
export class SourceSnapshots {
  constructor(readonly root: string) {}

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
    const { snapshot, key } = (sealed?.body ?? {}) as Record<string, unknown>;
    if (!isHex(snapshot) || !isHex(key)) return undefined;
    const now = snapshotOf(sources, signal);
    if (now.racy || now.digest() !== snapshot) return undefined;
    return { hex: key };
  }

  /**
   * Records that `sources`, as `walked` saw them while the key was made, gave `key`. Not
   * recorded when the walk saw a racy entry. Best effort: a record that cannot be written
   * costs the next build a full walk.
   */
  async record(recipeText: string, sources: readonly SourceSpec[], walked: SnapshotHasher, key: IndexKey): Promise<void> {
    if (walked.racy) return;
    // The next build walks the sources in full.
    await writeSealed(this.pathOf(recipeText, sources), FORMAT, { snapshot: walked.digest(), key: key.hex }).catch(() => {});
  }
}

function isHex(value: unknown): value is string {
  return typeof value === "string" && /^[0-9a-f]{64}$/.test(value);
}
