import { counting, READ_CHUNK } from "../util/io.js";
import { Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { AbortedError, IoError } from "../model/errors.js";
import { hasherDigest, newHasher, sha256, type Digest } from "../model/digest.js";
import type { WrittenArchives } from "../model/written-archives.js";
import type { LayerEntry } from "../layer/differ.js";
import type { FileContent } from "../layer/file-content.js";
import { approximateTarSize, tarStream, writeTar } from "../layer/tar-writer.js";
import { hashFileSync } from "../layer/hash-file.js";
import { writeStreamAtomically } from "../util/atomic.js";
import { byteMeter, type ProgressListener } from "../model/progress.js";
import { FileTarSink } from "../tar/file-sink.js";
import { NotInPlaceError } from "../tar/sink.js";
import type { ArchiveAssembly } from "./assembly.js";

/**
 * Image archives (docker-archive, OCI archive) as tars whose bytes depend on their content
 * alone. This module only decides what the tar holds: the leading entries (an image's
 * layers, in order) first, then the others sorted by name (byte order), each parent
 * directory just before the first entry below it, mtime 0, owner 0:0 with no names, mode
 * 0644 / 0755; and where it goes. Layers lead so that their offsets are known before they
 * are made, and a build can pack them straight into the archive (assembly.ts). The bytes
 * themselves come from the one tar writer (layer/tar-writer.ts), which also holds every
 * body to its declared size: a blob that
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
  | { name: string; size: number; open: (signal?: AbortSignal) => Promise<Readable>; what: string; digest?: Digest; leading?: boolean };

/** Bumped whenever the bytes written for the same entries change: it is part of an archive's identity. */
const ARCHIVE_FORMAT = "gantry-archive-tar-2";

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
    lines.push(JSON.stringify([e.name, "bytes" in e ? e.bytes.length : e.size, content, !("bytes" in e) && e.leading === true]));
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

function contentOf(entry: ArchiveEntry, assembly: ArchiveAssembly | undefined): FileContent {
  if ("bytes" in entry) {
    const bytes = entry.bytes;
    return { kind: "stream", open: async () => Readable.from([bytes]), what: `the archive member ${entry.name}` };
  }
  const at = entry.digest && assembly?.placedAt(entry.digest, entry.size);
  if (at !== undefined) return { kind: "present", at, what: entry.what };
  return { kind: "stream", open: entry.open, what: entry.what };
}

/**
 * The tar entries of an archive in their order: the leading entries as given, then the rest
 * sorted by name in byte order, each parent directory just before the first entry below it
 * (with no leading entries, that is every tar name in byte order). With `assembly`, the
 * bytes of the blobs it holds are left where they are.
 */
function archiveEntries(entries: readonly ArchiveEntry[], assembly?: ArchiveAssembly): LayerEntry[] {
  const names = entries.map((e) => e.name);
  if (new Set(names).size !== names.length) throw new IoError("an archive was asked to hold the same entry twice");
  const leads = (e: ArchiveEntry): boolean => !("bytes" in e) && e.leading === true;
  const ordered = [...entries.filter(leads), ...entries.filter((e) => !leads(e)).sort((a, b) => byteOrder(a.name, b.name))];
  const out: LayerEntry[] = [];
  const made = new Set<string>();
  for (const e of ordered) {
    const parts = e.name.split("/");
    for (let i = 1; i < parts.length; i++) {
      const path = parts.slice(0, i).join("/");
      if (made.has(path)) continue;
      made.add(path);
      out.push({ ...NEUTRAL, path, type: "dir", mode: DIR_MODE, size: 0 });
    }
    out.push({ ...NEUTRAL, path: e.name, type: "file", mode: FILE_MODE, size: "bytes" in e ? e.bytes.length : e.size, content: contentOf(e, assembly) });
  }
  return out;
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
  /** The archive's file, with layers already packed into it (assembly.ts), to be finished around them. */
  assembly?: ArchiveAssembly | undefined;
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
  const inPlace = opts.assembly?.holdsLayers ? await writeAroundLayers(opts.assembly, entries, tarOpts) : undefined;
  let bytes = 0;
  let digest: Digest | undefined;
  if (opts.assembly && inPlace !== undefined) {
    bytes = inPlace;
    // The layers did not pass through here: the archive is read back for the record.
    if (identity) digest = hashFileSync(opts.assembly.path, Buffer.allocUnsafe(READ_CHUNK));
    await opts.assembly.commit();
  } else {
    // The bytes are hashed as they are written only when there is a record to make of them.
    const hash = identity ? newHasher() : undefined;
    await writeStreamAtomically(dest, async (out) => {
      bytes = await writeTarArchive(entries, out, { ...tarOpts, onChunk: hash && ((chunk) => hash.update(chunk)) });
    });
    digest = hash && hasherDigest(hash);
  }
  if (written && identity && digest) await written.remember(dest, identity, { digest, size: bytes });
  return bytes;
}

/**
 * Writes the archive into the assembly's file around the layers already in it. Undefined,
 * with nothing gained, when a layer is not where the tar puts it: the archive must then be
 * written whole.
 */
async function writeAroundLayers(assembly: ArchiveAssembly, entries: readonly ArchiveEntry[], opts: TarWriteOptions): Promise<number | undefined> {
  const tarEntries = archiveEntries(entries, assembly);
  const meter = byteMeter(opts.onProgress, "write", `write ${opts.describe}`, `writing ${opts.describe} around the layers packed into it`, approximateTarSize(tarEntries));
  const sink = new FileTarSink(assembly.fd, (n) => meter.add(n));
  try {
    await writeTar(tarEntries, sink, { signal: opts.signal });
  } catch (err) {
    if (err instanceof NotInPlaceError) return undefined;
    if (opts.signal?.aborted) throw new AbortedError(opts.signal.reason);
    throw err;
  }
  // A layer packed into the file but not kept (the image held it twice) may have run past the end.
  await assembly.truncate(sink.position);
  meter.end();
  return sink.position;
}
