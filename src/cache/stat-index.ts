import { mkdir, open, readFile } from "node:fs/promises";
import { join } from "node:path";
import { digestHex, sha256, type Digest } from "../model/digest.js";
import { fingerprintCtimeNs, type HostFingerprint } from "../layer/sources.js";
import { writeFileAtomically } from "../util/atomic.js";
import { writeTextPieces } from "../util/io.js";
import { touchUsed } from "./prune.js";

/**
 * The stat index: what git's index is to git. For each host file a build has read, the
 * fingerprint it had (dev, inode, st_mode, size, mtime and ctime in nanoseconds) and the
 * sha256 of its bytes then. A file whose fingerprint is unchanged is not read again: a warm
 * machine hashes nothing, a fresh one hashes each file once. The content digests make the
 * layer keys (cache/content-key.ts), which are then the same on every machine.
 *
 * Why a fingerprint vouches for the bytes: every write to a file sets its ctime to the
 * current time, and no user call sets a ctime back (utimes sets mtime and moves ctime to
 * now). The exception is git's "racily clean" file: a timestamp has a granularity (the
 * kernel's coarse clock tick, a few milliseconds, or whole seconds on some file systems),
 * and a file written again within the tick its ctime shows, after it was hashed, keeps that
 * ctime. That can only happen to a file whose ctime is within one tick of the moment it was
 * hashed, so such a file is not recorded (2 s when the ctime has no sub-second part,
 * 100 ms otherwise): it is hashed again next time, by then old enough. (A file system whose
 * clock runs behind this machine's by more than the window defeats the rule, as it defeats
 * git's.)
 *
 * One file per source directory, `<cache>/stat/<sha256 of the directory>.idx`, of lines
 * `PATH\0dev\0ino\0mode\0size\0mtimeNs\0ctimeNs\0HEX`, after a header line that names the
 * format and the directory. Concurrent builds each write the whole file atomically; the
 * last one wins, and every line of either is true of the file it describes when it was
 * read, so neither can make the other wrong: a line whose fingerprint no longer matches is
 * simply not used.
 */

const FORMAT = "gantry stat index 1";
const HEX_LENGTH = 64;

const RACY_WINDOW_NS = 100_000_000n;
const RACY_WINDOW_WHOLE_SECONDS_NS = 2_000_000_000n;
const NS_PER_SECOND = 1_000_000_000n;

/** Whether a file hashed at `hashedAtNs` could still change without its fingerprint showing it. */
export function isRacy(fingerprint: HostFingerprint, hashedAtNs: bigint): boolean {
  return isRacyChange(fingerprintCtimeNs(fingerprint), hashedAtNs);
}

/** The wall-clock time in nanoseconds, as the racy rule compares it with a ctime. */
export function wallClockNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

/** Whether an entry whose ctime is `ctimeNs`, seen at `seenAtNs`, could change again within the tick its ctime shows. */
export function isRacyChange(ctimeNs: bigint, seenAtNs: bigint): boolean {
  const window = ctimeNs % NS_PER_SECOND === 0n ? RACY_WINDOW_WHOLE_SECONDS_NS : RACY_WINDOW_NS;
  return ctimeNs > seenAtNs - window;
}

/** Rows of a table written at a time (see DirectoryTable.serialize). */
const SERIALIZE_PIECE = 2000;

/** The files of one source directory, by their path below it. */
export class DirectoryTable {
  /** Path → `FINGERPRINT\0HEX`: one string per file, not an object of two. */
  readonly lines = new Map<string, string>();
  changed = false;
  /**
   * Whether a build has made a key from this directory's files before (the table was on
   * disk, if with no row: every file racy then). builtFrom() marks it so.
   */
  known = false;

  constructor(readonly dir: string) {}

  static parse(dir: string, text: string): DirectoryTable {
    const table = new DirectoryTable(dir);
    const rows = text.split("\n");
    if (rows[0] !== `${FORMAT}\0${dir}`) return table;
    table.known = true;
    for (let i = 1; i < rows.length; i++) {
      const row = rows[i]!;
      const first = row.indexOf("\0");
      const last = row.lastIndexOf("\0");
      if (first < 0 || last <= first) continue;
      // Checked by its length alone: the file is gantry's, and a wrong digest is only a wrong key.
      if (row.length - last - 1 !== HEX_LENGTH) continue;
      table.lines.set(row.slice(0, first), row.slice(first + 1));
    }
    return table;
  }

  /** The digest recorded for `path`, if its fingerprint is still `fingerprint`. */
  lookup(path: string, fingerprint: HostFingerprint): Digest | undefined {
    const line = this.lines.get(path);
    const matches = line !== undefined && line.length === fingerprint.length + 1 + HEX_LENGTH &&
      line.charCodeAt(fingerprint.length) === 0 && line.startsWith(fingerprint);
    return matches ? `sha256:${line.slice(fingerprint.length + 1)}` : undefined;
  }

  /** Marks the table known (see `known`): it is written, if need be with no row. */
  builtFrom(): void {
    if (this.known) return;
    this.known = true;
    this.changed = true;
  }

  /** Records what `path` hashed to, with the fingerprint it had; a racy file (see above) is not recorded. */
  record(path: string, fingerprint: HostFingerprint, digest: Digest, hashedAtNs: bigint): void {
    if (isRacy(fingerprint, hashedAtNs)) return;
    this.lines.set(path, `${fingerprint}\0${digestHex(digest)}`);
    this.changed = true;
  }

  /**
   * The table's text, in pieces of about SERIALIZE_PIECE rows, paths in order: a table of
   * 100,000 files is 18 MB of text, which as one string (and its rows) was garbage enough
   * to grow the heap by 60 MB at the end of a build.
   */
  *serialize(): Generator<string> {
    let rows = [`${FORMAT}\0${this.dir}`];
    // The default sort compares UTF-16 code units, as `<` does, without a call per comparison.
    for (const path of [...this.lines.keys()].sort()) {
      rows.push(`${path}\0${this.lines.get(path)!}`);
      if (rows.length === SERIALIZE_PIECE) {
        yield `${rows.join("\n")}\n`;
        rows = [];
      }
    }
    if (rows.length > 0) yield `${rows.join("\n")}\n`;
  }
}

/**
 * The stat index kept in `root` (`<cache>/stat`): one DirectoryTable per source directory, read
 * at most once per build and written back by save().
 */
export class StatIndex {
  private readonly tables = new Map<string, Promise<DirectoryTable>>();

  constructor(readonly root: string) {}

  private fileOf(dir: string): string {
    return join(this.root, `${digestHex(sha256(dir)).slice(0, 40)}.idx`);
  }

  /** The table of a source directory, read once per build; unreadable or foreign is empty. */
  table(dir: string): Promise<DirectoryTable> {
    let table = this.tables.get(dir);
    if (table === undefined) {
      table = readFile(this.fileOf(dir), "utf8").then(async (text) => {
        await touchUsed(this.fileOf(dir));
        return DirectoryTable.parse(dir, text);
      }, () => new DirectoryTable(dir));
      this.tables.set(dir, table);
    }
    return table;
  }

  /**
   * Writes the tables that learnt something. Best effort: a stat index that cannot be
   * written only means hashing again next time.
   */
  async save(): Promise<void> {
    for (const pending of this.tables.values()) {
      const table = await pending;
      if (!table.changed) continue;
      try {
        await mkdir(this.root, { recursive: true });
        await writeFileAtomically(this.fileOf(table.dir), async (temp) => {
          const file = await open(temp, "w");
          try {
            await writeTextPieces(file.fd, table.serialize(), 0);
          } finally {
            await file.close();
          }
        });
        table.changed = false;
      } catch {
        // The next build hashes these files again.
      }
    }
  }
}
