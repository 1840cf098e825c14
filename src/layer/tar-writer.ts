import { PassThrough, type Readable, type Writable } from "node:stream";
import { EMPTY_DIGEST, hasherDigest, newHasher, type Digest } from "../model/digest.js";
import { pack as tarPack, type Header, type Pack } from "tar-stream";
import { SpecError, UnsafePathError, AbortedError, IoError, UnsupportedError } from "../model/errors.js";
import type { LayerEntry } from "./differ.js";
import { contentChunks } from "./file-content.js";
import type { EntryType } from "./path-tree.js";

/**
 * The one deterministic tar writer. Every byte of its output is fixed by the entries:
 * their order (the caller's), names (directories end in "/"), mode, owner ids and names,
 * mtime, link targets, device numbers and file content. No atime or ctime is written;
 * names longer than ustar allows, non-ASCII names and ids too large for ustar go in a
 * PAX header (tar-stream writes one with a fixed name and the entry's own fields).
 * Layers, flattened roots and image archives (archive/archive-tar.ts) all come out of it,
 * so there is one place where tar bytes are decided.
 */

const TAR_TYPE: Record<EntryType, NonNullable<Header["type"]>> = {
  file: "file",
  dir: "directory",
  symlink: "symlink",
  hardlink: "link",
  char: "character-device",
  block: "block-device",
  fifo: "fifo",
};

/**
 * The `st_mode` type bits of each kind. tar-stream replaces a mode of 0 with 0644/0755, so a
 * mode is always given with its type bits (never 0); the ustar field keeps only 0o7777.
 */
const S_IF: Record<EntryType, number> = {
  file: 0o100000, hardlink: 0o100000, dir: 0o040000, symlink: 0o120000, char: 0o020000, block: 0o060000, fifo: 0o010000,
};

/** Largest value of ustar's 8-byte octal owner fields (7 digits); above it, PAX carries the id. */
const USTAR_MAX_ID = 0o7777777;
/** ustar's owner name fields are 32 bytes, NUL-terminated. */
const USTAR_MAX_NAME = 31;
/** The 8-byte modern device fields hold 7 octal digits. */
const USTAR_MAX_DEVICE = 0o7777777;

/** What `Pack.entry` takes: a header, PAX records included. */
type EntryHeader = Partial<Header> & Pick<Header, "name"> & { pax?: Record<string, string> };

function headerOf(e: LayerEntry): EntryHeader {
  if (e.path === "" || e.path.startsWith("/") || e.path.endsWith("/")) {
    throw new UnsafePathError(`the layer entry ${JSON.stringify(e.path)} is not a canonical path below the image root`);
  }
  const pax: Record<string, string> = {};
  const id = (value: number, key: "uid" | "gid"): number => {
    if (value <= USTAR_MAX_ID) return value;
    pax[key] = String(value);
    return 0;
  };
  const ownerName = (value: string, key: "uname" | "gname"): string => {
    if (Buffer.byteLength(value) <= USTAR_MAX_NAME && !value.includes("\0")) return value;
    if (value.includes("\0")) throw new SpecError(`the owner name ${JSON.stringify(value)} holds a NUL byte; give a plain user or group name`);
    pax[key] = value;
    return "";
  };
  if ((e.devmajor ?? 0) > USTAR_MAX_DEVICE || (e.devminor ?? 0) > USTAR_MAX_DEVICE) {
    throw new UnsupportedError(`the device ${e.path} has numbers ${e.devmajor}:${e.devminor}, too large for a tar header`);
  }
  const header: EntryHeader = {
    name: e.type === "dir" ? `${e.path}/` : e.path,
    type: TAR_TYPE[e.type],
    mode: S_IF[e.type] | (e.mode & 0o7777),
    uid: id(e.uid, "uid"),
    gid: id(e.gid, "gid"),
    uname: ownerName(e.uname, "uname"),
    gname: ownerName(e.gname, "gname"),
    size: e.type === "file" ? e.size : 0,
    mtime: new Date(e.mtime * 1000),
  };
  if (e.type === "symlink" || e.type === "hardlink") header.linkname = e.linkname ?? "";
  if (e.type === "char" || e.type === "block") {
    header.devmajor = e.devmajor ?? 0;
    header.devminor = e.devminor ?? 0;
  }
  if (Object.keys(pax).length > 0) header.pax = pax;
  return header;
}

/** Resolves when a writable (a tar-stream body, the tar's reader) can take more; rejects if it fails or closes first. */
function whenWritable(stream: Sink | Writable): Promise<void> {
  // streamx's writables (tar-stream's) have Node's drain, error and close events.
  const sink = stream as Writable;
  // A destroyed sink has already said "close"; waiting for it again would wait forever.
  if (sink.destroyed) return Promise.reject(new Error("the tar stream was closed"));
  return new Promise((resolve, reject) => {
    const done = (err?: unknown): void => {
      sink.off("drain", onDrain);
      sink.off("error", done);
      sink.off("close", onClose);
      if (err) reject(err); else resolve();
    };
    const onDrain = (): void => done();
    const onClose = (): void => done(new Error("the tar stream was closed"));
    sink.on("drain", onDrain);
    sink.on("error", done);
    sink.on("close", onClose);
  });
}

/** Adds one entry and waits until tar-stream has taken all of it. */
function addEntry(tar: Pack, header: EntryHeader, fill?: (sink: Sink) => Promise<void>): Promise<void> {
  let sink: Sink | undefined;
  const added = new Promise<void>((resolve, reject) => {
    sink = tar.entry(header, (err) => (err ? reject(err) : resolve()));
  });
  added.catch(() => {});
  if (fill === undefined || sink === undefined) return added;
  const body = sink;
  // A body destroyed with an error (its content failed, or the tar was destroyed) also emits
  // it; the error reaches the caller through the tar and the returned promise, so it is not
  // left to surface as an unhandled "error" event.
  body.on("error", () => {});
  return fill(body).then(
    () => { body.end(null); return added; },
    (err: unknown) => { body.destroy(err as Error); throw err; },
  );
}

type Sink = ReturnType<Pack["entry"]>;

/** Streams a regular file's content into its entry: exactly `size` bytes, or the tar fails. */
async function writeFile(tar: Pack, header: EntryHeader, e: LayerEntry, signal: AbortSignal, digests: Map<string, Digest> | undefined): Promise<void> {
  const content = e.content;
  if (content === undefined) {
    if (e.size !== 0) throw new IoError(`the layer entry ${e.path} has ${e.size} bytes of content but nothing to read them from`);
    digests?.set(e.path, EMPTY_DIGEST);
    return addEntry(tar, header, async () => {});
  }
  const hash = digests ? newHasher() : undefined;
  await addEntry(tar, header, async (sink) => {
    for await (const chunk of contentChunks(content, e.size, signal)) {
      hash?.update(chunk);
      if (!sink.write(chunk)) await whenWritable(sink);
    }
  });
  if (hash) digests?.set(e.path, hasherDigest(hash));
}


/** Options for tarStream; a fired `signal` fails the stream with an AbortedError. */
export interface TarOptions {
  signal?: AbortSignal | undefined;
  /** Filled with the sha256 of each regular file's content as it is written (for the tree index). */
  fileDigests?: Map<string, Digest> | undefined;
}

/**
 * The tar of `entries`, in their order, as a Node stream. File contents are read (see
 * file-content.ts) when the consumer asks for them; the stream fails with a
 * SOURCE_UNREADABLE error naming the host file if one cannot be read or changed size, and
 * with a DIGEST_MISMATCH error naming the stream if one runs short or long.
 */
export function tarStream(entries: Iterable<LayerEntry>, opts: TarOptions = {}): Readable {
  const tar = tarPack();
  // Once the tar is closed (finished, failed, aborted or dropped by its reader), content
  // still being read is released rather than left waiting for bytes nobody will take.
  const released = new AbortController();
  tar.once("close", () => released.abort());
  const fail = (err: unknown): void => { tar.destroy(err as Error); };
  const onAbort = (): void => fail(new AbortedError(opts.signal?.reason));
  if (opts.signal?.aborted) onAbort();
  else opts.signal?.addEventListener("abort", onAbort, { once: true });
  const pacing = new Pacing(tar);
  void feed(tar, pacing, entries, released.signal, opts.fileDigests).then(
    () => tar.finalize(),
    fail,
  ).finally(() => opts.signal?.removeEventListener("abort", onAbort));
  return pacing.out;
}

/** How much of the tar may wait for its reader before the feed waits too. */
const PACED_BUFFER = 1024 * 1024;

/**
 * The tar as a stream that holds its reader's pace. tar-stream holds an entry's body back
 * while its reader is behind, but not a header: an entry without a body (a directory, an
 * empty file) is queued at once, and the feed, which runs on promises alone, queued a layer
 * of 800,000 empty files whole, 410 MB, before its reader got a byte. So the tar is copied
 * into a stream of ours (`out`), the tar paused while that one is full (which holds the
 * bodies back), and the feed waits between entries for `room`: for `out` to drain, or for
 * the tar to pass on what it holds when the entries handed to it run more than a buffer
 * ahead of what came out.
 */
class Pacing {
  readonly out = new PassThrough({ highWaterMark: PACED_BUFFER });
  /** Bytes handed to the tar not out of it yet; an estimate (PAX headers are not counted), never below 0. */
  private ahead = 0;

  constructor(private readonly tar: Pack) {
    tar.on("data", (chunk: unknown) => {
      const bytes = chunk as Buffer;
      this.ahead = Math.max(0, this.ahead - bytes.length);
      if (!this.out.write(bytes)) tar.pause();
    });
    this.out.on("drain", () => tar.resume());
    tar.on("end", () => this.out.end());
    tar.on("error", (err: Error) => this.out.destroy(err));
    // The reader gone (done, failed or dropped): the tar goes too, and so does the feed.
    this.out.on("close", () => { if (!tar.destroyed) tar.destroy(); });
  }

  /** Counts an entry going into the tar: its header and its body, padded. */
  handed(e: LayerEntry): void {
    this.ahead += TAR_BLOCK + (e.type === "file" ? Math.ceil(e.size / TAR_BLOCK) * TAR_BLOCK : 0);
  }

  /** Resolves once the tar's reader is near enough for another entry. */
  async room(): Promise<void> {
    for (;;) {
      if (this.tar.destroyed || this.out.destroyed) throw new Error("the tar stream was closed");
      if (this.out.writableNeedDrain) await whenWritable(this.out);
      else if (this.ahead > PACED_BUFFER) await new Promise((resolve) => setImmediate(resolve));
      else return;
    }
  }
}

async function feed(tar: Pack, pacing: Pacing, entries: Iterable<LayerEntry>, released: AbortSignal, digests: Map<string, Digest> | undefined): Promise<void> {
  for (const e of entries) {
    await pacing.room();
    const header = headerOf(e);
    pacing.handed(e);
    if (e.type === "file") await writeFile(tar, header, e, released, digests);
    else await addEntry(tar, header);
  }
}

const TAR_BLOCK = 512;

/**
 * About how many bytes `tarStream(entries)` writes: a header per entry, the bodies padded
 * to blocks, the two closing blocks. PAX headers of long names are not counted, so this is
 * a progress meter's total, never a size to check against.
 */
export function approximateTarSize(entries: readonly LayerEntry[]): number {
  let bytes = 2 * TAR_BLOCK;
  for (const e of entries) bytes += TAR_BLOCK + (e.type === "file" ? Math.ceil(e.size / TAR_BLOCK) * TAR_BLOCK : 0);
  return bytes;
}
