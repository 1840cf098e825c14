import { counting, fileWriter } from "../util/io.js";
import { Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { AbortedError, IoError } from "../model/errors.js";
import { hasherDigest, newHasher, sha256, type Digest } from "../model/digest.js";
import type { WrittenArchives } from "../model/written-archives.js";
import type { LayerEntry } from "../layer/differ.js";
import type { FileContent } from "../layer/file-content.js";
import { tarStream } from "../layer/tar-writer.js";
import { writeFileAtomically } from "../util/atomic.js";
import { byteMeter, type ProgressListener } from "../model/progress.js";
import { approximateTarSize } from "../layer/tar-writer.js";

/**
 * Image archives (docker-archive, OCI archive) as tars whose bytes depend on their content
 * alone. This module only decides what the tar holds: entries sorted by name (byte
 * order), each parent directory before its children, mtime 0, owner 0:0 with no names,
 * mode 0644 / 0755; and where it goes. The bytes themselves come from the one tar writer
 * (layer/tar-writer.ts), which also holds every body to its declared size: a blob that
 * runs short or long fails the write with a DIGEST_MISMATCH error naming it instead of
 * shifting the tar.
 */

/**
 * One file of an archive: small ones held in memory, large ones opened on demand (`what`
 * names them in errors; `digest`, the sha256 their stream is checked against, names their
 * content, and without it the archive has no identity). Two with one name fail the write (IoError).
 */
export type ArchiveEntry =
  | { name: string; bytes: Buffer }
  | { name: string; size: number; open: (signal?: AbortSignal) => Promise<Readable>; what: string; digest?: Digest };

/** Bumped whenever the bytes written for the same entries change: it is part of an archive's identity. */
const ARCHIVE_FORMAT = "gantry-archive-tar-1";

/**
 * A name for the archive `entries` make, the same exactly when the bytes written would be:
 * the tar depends on the entries' names, sizes and contents alone. Undefined when a
 * streamed entry has no digest to name its content by.
 */
export function archiveIdentity(entries: readonly ArchiveEntry[]): Digest | undefined {
  const lines: string[] = [ARCHIVE_FORMAT];
  for (const e of entries) {
    const content = "bytes" in e ? sha256(e.bytes) : e.digest;
    if (content === undefined) return undefined;
    lines.push(JSON.stringify([e.name, "bytes" in e ? e.bytes.length : e.size, content]));
  }
  return sha256(lines.join("\n"));
}

const FILE_MODE = 0o644;
const DIR_MODE = 0o755;
/** What every entry of an archive has in common: no owner and no time to leak. */
const NEUTRAL = { uid: 0, gid: 0, uname: "", gname: "", mtime: 0 } as const;

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Every parent directory of the names (`a/b/c` gives `a` and `a/b`), so extractors never invent them. */
function parentDirectories(names: readonly string[]): string[] {
  const dirs = new Set<string>();
  for (const name of names) {
    const parts = name.split("/");
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join("/"));
  }
  return [...dirs];
}

function contentOf(entry: ArchiveEntry): FileContent {
  if ("bytes" in entry) {
    const bytes = entry.bytes;
    return { kind: "stream", open: async () => Readable.from([bytes]), what: `the archive member ${entry.name}` };
  }
  return { kind: "stream", open: entry.open, what: entry.what };
}

/**
 * The tar entries of an archive in their order: files and their parent directories,
 * sorted by tar name in byte order. A directory's tar name `d/` sorts before every
 * `d/...`, so each parent comes before its children.
 */
function archiveEntries(entries: readonly ArchiveEntry[]): LayerEntry[] {
  const names = entries.map((e) => e.name);
  if (new Set(names).size !== names.length) throw new IoError("an archive was asked to hold the same entry twice");
  const dirs = parentDirectories(names).map((path) => ({
    tarName: `${path}/`,
    entry: { ...NEUTRAL, path, type: "dir", mode: DIR_MODE, size: 0 } satisfies LayerEntry,
  }));
  const files = entries.map((e) => ({
    tarName: e.name,
    entry: { ...NEUTRAL, path: e.name, type: "file", mode: FILE_MODE, size: "bytes" in e ? e.bytes.length : e.size, content: contentOf(e) } satisfies LayerEntry,
  }));
  return [...dirs, ...files].sort((a, b) => byteOrder(a.tarName, b.tarName)).map((x) => x.entry);
}

/** How writeTarArchive runs; a fired `signal` fails the write with an AbortedError. */
export interface TarWriteOptions {
  signal?: AbortSignal | undefined;
  /** Told the bytes written so far (step "write"). */
  onProgress?: ProgressListener | undefined;
  /** Where the tar goes, for the progress meter: "out.tar", "the Docker engine". */
  describe?: string;
  /** Given every chunk written, in order (to hash the archive as it is written). */
  onChunk?: ((chunk: Buffer) => void) | undefined;
}

/**
 * Streams the entries as one deterministic tar into `out` (ended when done).
 * Resolves to the number of bytes written.
 */
export async function writeTarArchive(entries: readonly ArchiveEntry[], out: Writable, opts: TarWriteOptions = {}): Promise<number> {
  const { signal } = opts;
  const tarEntries = archiveEntries(entries);
  const describe = opts.describe ?? "the archive";
  const meter = byteMeter(opts.onProgress, "write", `write ${describe}`, `writing ${describe}`, approximateTarSize(tarEntries));
  const tar = tarStream(tarEntries, { signal });
  let bytes = 0;
  try {
    await pipeline(tar, counting((n, chunk) => { bytes += n; meter.add(n); opts.onChunk?.(chunk); }), out);
  } catch (err) {
    if (signal?.aborted) throw new AbortedError(signal.reason);
    throw err;
  }
  meter.end();
  return bytes;
}

/** `-` writes to standard output (or `output`). */
const STDOUT = "-";

/** Options for writeTarTo: those of writeTarArchive but `describe`, which writeTarTo takes from `dest`. */
export interface ArchiveWriteOptions extends Omit<TarWriteOptions, "describe"> {
  /** Where `-` writes; standard output when absent. */
  output?: Writable;
  /** The archives written before: a file that already holds this archive is left as it is. */
  written?: WrittenArchives | undefined;
}

/**
 * Writes the entries to `dest` atomically, or to the output stream for `-`. With `written`,
 * a file that still holds this very archive (see WrittenArchives) is left untouched, and
 * an archive written is remembered.
 */
export async function writeTarTo(dest: string, entries: readonly ArchiveEntry[], opts: ArchiveWriteOptions): Promise<number> {
  const tarOpts: TarWriteOptions = { signal: opts.signal, onProgress: opts.onProgress, describe: dest === STDOUT ? "standard output" : dest };
  if (dest === STDOUT) return writeTarArchive(entries, opts.output ?? process.stdout, tarOpts);
  const written = opts.written;
  const identity = written && archiveIdentity(entries);
  if (written && identity) {
    const size = await written.unchanged(dest, identity, opts.signal);
    if (size !== undefined) {
      opts.onProgress?.({ step: "write", message: `${dest} already holds this archive; left as it is` });
      return size;
    }
  }
  // The bytes are hashed as they are written only when there is a record to make of them.
  const hash = identity ? newHasher() : undefined;
  let bytes = 0;
  await writeFileAtomically(dest, async (tmp) => {
    bytes = await writeTarArchive(entries, fileWriter(tmp), { ...tarOpts, onChunk: hash && ((chunk) => hash.update(chunk)) });
  });
  if (written && identity && hash) await written.remember(dest, identity, { digest: hasherDigest(hash), size: bytes });
  return bytes;
}
