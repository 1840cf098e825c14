import { createWriteStream } from "node:fs";
import { Transform, type Readable, type TransformCallback, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { pack as tarPack, type Header, type Pack } from "tar-stream";
import { DigestMismatchError, throwIfAborted, IoError, AbortedError } from "../model/errors.js";
import { writeFileAtomically } from "../util/atomic.js";

/**
 * Writes image archives (docker-archive, OCI archive) as tars whose bytes depend on
 * their content alone: entries sorted by name (byte order), each parent directory
 * before its children, mtime 0, owner 0:0 with no names, mode 0644 / 0755.
 * File bodies are streamed, and each must produce exactly its declared size: a
 * body that runs short or long fails the write instead of shifting the tar.
 */

export type ArchiveEntry =
  | { name: string; bytes: Buffer }
  | { name: string; size: number; open: (signal?: AbortSignal) => Promise<Readable>; what: string };

const FILE_MODE = 0o644;
const DIR_MODE = 0o755;
const EPOCH = new Date(0);

function header(name: string, type: "file" | "directory", size: number): Header {
  return { name, type, size, mode: type === "file" ? FILE_MODE : DIR_MODE, mtime: EPOCH, uid: 0, gid: 0, uname: "", gname: "", linkname: "", devmajor: 0, devminor: 0 };
}

/** Every parent directory of the entries, as `dir/`, so extractors never invent them. */
function parentDirectories(names: readonly string[]): string[] {
  const dirs = new Set<string>();
  for (const name of names) {
    const parts = name.split("/");
    for (let i = 1; i < parts.length; i++) dirs.add(`${parts.slice(0, i).join("/")}/`);
  }
  return [...dirs];
}

/** A pass-through that fails as soon as more than `size` bytes arrive, or at the end if fewer did. */
function exactly(size: number, what: string): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      seen += chunk.length;
      if (seen > size) cb(new DigestMismatchError(`${what} produced more than its declared ${size} bytes`));
      else cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      if (seen !== size) cb(new DigestMismatchError(`${what} produced ${seen} bytes, not its declared ${size}`));
      else cb();
    },
  });
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Adds one entry to the pack and resolves once its body is fully written. */
async function addEntry(pack: Pack, entry: ArchiveEntry, signal?: AbortSignal): Promise<void> {
  if ("bytes" in entry) {
    await new Promise<void>((resolve, reject) => {
      pack.entry(header(entry.name, "file", entry.bytes.length), entry.bytes, (err) => (err ? reject(err) : resolve()));
    });
    return;
  }
  let done!: Promise<void>;
  const sink = await new Promise<Writable>((resolve) => {
    done = new Promise<void>((ok, fail) => {
      resolve(pack.entry(header(entry.name, "file", entry.size), (err) => (err ? fail(err) : ok())) as unknown as Writable);
    });
  });
  done.catch(() => {});
  const source = await entry.open(signal);
  try {
    await pipeline(source, exactly(entry.size, entry.what), sink, signal ? { signal } : {});
  } catch (err) {
    if (!sink.destroyed) sink.destroy(err as Error);
    throw err;
  }
  await done;
}

/**
 * Streams the entries as one deterministic tar into `out` (ended when done).
 * Resolves to the number of bytes written.
 */
export async function writeTarArchive(entries: readonly ArchiveEntry[], out: Writable, signal?: AbortSignal): Promise<number> {
  const names = entries.map((e) => e.name);
  if (new Set(names).size !== names.length) throw new IoError("an archive was asked to hold the same entry twice");
  const files = [...entries].sort((a, b) => byteOrder(a.name, b.name));
  const dirs = parentDirectories(names).sort(byteOrder);
  // One ordered list: a directory `d/` sorts before every `d/...`, so parents come first.
  const ordered: ({ dir: string } | { file: ArchiveEntry })[] = [
    ...dirs.map((dir) => ({ dir })),
    ...files.map((file) => ({ file })),
  ].sort((a, b) => byteOrder("dir" in a ? a.dir : a.file.name, "dir" in b ? b.dir : b.file.name));

  const pack = tarPack();
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) { bytes += chunk.length; cb(null, chunk); },
  });
  const sinkDone = pipeline(pack as unknown as Readable, counter, out);
  const produce = async (): Promise<void> => {
    for (const item of ordered) {
      throwIfAborted(signal);
      if ("dir" in item) {
        await new Promise<void>((resolve, reject) => {
          pack.entry(header(item.dir, "directory", 0), (err) => (err ? reject(err) : resolve()));
        });
      } else {
        await addEntry(pack, item.file, signal);
      }
    }
    pack.finalize();
  };
  // The first failure wins: a body that fails destroys the pack, which fails the sink too.
  let failure: { err: unknown } | undefined;
  try {
    await produce();
  } catch (err) {
    failure = { err };
    pack.destroy(err as Error);
  }
  try {
    await sinkDone;
  } catch (err) {
    failure ??= { err };
  }
  if (failure) {
    if (signal?.aborted) throw new AbortedError(signal.reason);
    throw failure.err;
  }
  return bytes;
}

/** `-` writes to standard output (or `output`). */
const STDOUT = "-";

export interface ArchiveWriteOptions {
  signal?: AbortSignal;
  /** Where `-` writes; standard output when absent. */
  output?: Writable;
}

/** Writes the entries to `dest` atomically, or to the output stream for `-`. */
export async function writeTarTo(dest: string, entries: readonly ArchiveEntry[], opts: ArchiveWriteOptions): Promise<number> {
  if (dest === STDOUT) return writeTarArchive(entries, opts.output ?? process.stdout, opts.signal);
  let bytes = 0;
  await writeFileAtomically(dest, async (tmp) => {
    bytes = await writeTarArchive(entries, createWriteStream(tmp), opts.signal);
  });
  return bytes;
}

