import type { Readable } from "node:stream";
import { ContentDigester, EMPTY_DIGEST, type Digest } from "../model/digest.js";
import { SpecError, UnsafePathError, AbortedError, IoError, UnsupportedError } from "../model/errors.js";
import { END_OF_ARCHIVE_BYTES, MAX_SHORT_OCTAL, encodeHeader, paddingLength, writeUstarHeader, type TarHeaderFields, type TarTypeFlag } from "../tar/encode.js";
import { BLOCK } from "../tar/header.js";
import { putZeros, type TarSink } from "../tar/sink.js";
import { ReadableTarSink } from "../tar/readable-sink.js";
import type { LayerEntry } from "./differ.js";
import { copyContent } from "./file-content.js";
import type { EntryType } from "./path-tree.js";

/**
 * The one deterministic tar writer. Every byte of its output is fixed by the entries:
 * their order (the caller's), names (directories end in "/"), mode, owner ids and names,
 * mtime, link targets, device numbers and file content. No atime or ctime is written;
 * names longer than ustar allows, non-ASCII names and ids too large for ustar go in a
 * PAX header (tar/encode.ts). Layers (layer/pack.ts, straight into blocks for the
 * compressor), flattened roots and image archives (archive/archive-tar.ts, as a stream)
 * all come out of it, so there is one place where tar bytes are decided.
 */

const TYPE_FLAG: Record<EntryType, TarTypeFlag> = {
  file: "0",
  hardlink: "1",
  symlink: "2",
  char: "3",
  block: "4",
  dir: "5",
  fifo: "6",
};

/** ustar's owner name fields are 32 bytes, NUL-terminated. */
const USTAR_MAX_NAME = 31;

function headerOf(e: LayerEntry): TarHeaderFields {
  if (e.path === "" || e.path.startsWith("/") || e.path.endsWith("/")) {
    throw new UnsafePathError(`the layer entry ${JSON.stringify(e.path)} is not a canonical path below the image root`);
  }
  const pax: Record<string, string> = {};
  // An id past the 6-digit field goes in a PAX record (its ustar field then says 0).
  const id = (value: number, key: "uid" | "gid"): number => {
    if (value <= MAX_SHORT_OCTAL) return value;
    pax[key] = String(value);
    return 0;
  };
  const ownerName = (value: string, key: "uname" | "gname"): string => {
    if (Buffer.byteLength(value) <= USTAR_MAX_NAME && !value.includes("\0")) return value;
    if (value.includes("\0")) throw new SpecError(`the owner name ${JSON.stringify(value)} holds a NUL byte; give a plain user or group name`);
    pax[key] = value;
    return "";
  };
  const devmajor = e.devmajor ?? 0;
  const devminor = e.devminor ?? 0;
  if (devmajor > MAX_SHORT_OCTAL || devminor > MAX_SHORT_OCTAL) {
    throw new UnsupportedError(`the device ${e.path} has numbers ${devmajor}:${devminor}, too large for a tar header`);
  }
  const device = e.type === "char" || e.type === "block";
  const linked = e.type === "symlink" || e.type === "hardlink";
  const header: TarHeaderFields = {
    name: e.type === "dir" ? `${e.path}/` : e.path,
    type: TYPE_FLAG[e.type],
    mode: e.mode & 0o7777,
    uid: id(e.uid, "uid"),
    gid: id(e.gid, "gid"),
    uname: ownerName(e.uname, "uname"),
    gname: ownerName(e.gname, "gname"),
    size: e.type === "file" ? e.size : 0,
    // Whole seconds as a millisecond Date gives them, truncated to the field's 32 bits.
    mtime: (Math.trunc(e.mtime * 1000) / 1000) | 0,
    linkname: linked ? e.linkname ?? "" : "",
    devmajor: device ? devmajor : 0,
    devminor: device ? devminor : 0,
  };
  if (Object.keys(pax).length > 0) header.pax = pax;
  return header;
}

/** Options for writeTar and tarStream; a fired `signal` fails the tar with an AbortedError. */
export interface TarOptions {
  signal?: AbortSignal | undefined;
  /** Filled with the sha256 of each regular file's content as it is written (for the tree index). */
  fileDigests?: Map<string, Digest> | undefined;
}

/**
 * Writes the tar of `entries`, in their order, into `sink`, and closes it. File contents are
 * read (see file-content.ts) as the sink takes them; the tar fails with a SOURCE_UNREADABLE
 * error naming the host file if one cannot be read or changed size, and with a
 * DIGEST_MISMATCH error naming the stream if one runs short or long.
 */
export async function writeTar(entries: Iterable<LayerEntry>, sink: TarSink, opts: TarOptions = {}): Promise<void> {
  const signal = opts.signal ?? NEVER;
  for (const e of entries) {
    if (signal.aborted) throw new AbortedError(signal.reason);
    const header = headerOf(e);
    // Most headers go straight into the sink's buffer; a PAX one, or one that would
    // straddle two chunks, is encoded on its own and copied.
    if (sink.buffer.length - sink.used >= BLOCK && writeUstarHeader(header, sink.buffer, sink.used)) {
      const wait = sink.filled(BLOCK);
      if (wait !== undefined) await wait;
    } else {
      await sink.give(encodeHeader(header));
    }
    if (e.type === "file") await writeBody(e, sink, signal, opts.fileDigests);
  }
  if (signal.aborted) throw new AbortedError(signal.reason);
  await putZeros(sink, END_OF_ARCHIVE_BYTES);
  await sink.close();
}

const NEVER = new AbortController().signal;

/** A regular file's content: exactly `size` bytes, then the padding to a whole block. */
async function writeBody(e: LayerEntry, sink: TarSink, signal: AbortSignal, digests: Map<string, Digest> | undefined): Promise<void> {
  const content = e.content;
  if (content === undefined) {
    if (e.size !== 0) throw new IoError(`the layer entry ${e.path} has ${e.size} bytes of content but nothing to read them from`);
    digests?.set(e.path, EMPTY_DIGEST);
    return;
  }
  const hash = digests ? new ContentDigester() : undefined;
  await copyContent(content, e.size, sink, signal, hash);
  await putZeros(sink, paddingLength(e.size));
  if (hash) digests?.set(e.path, hash.digest());
}

/**
 * The tar of `entries` as a Node stream, for the image archives and flattened roots: made
 * as its reader takes it (see ReadableTarSink), so a layer of 800,000 empty files never
 * waits whole in memory. The errors are writeTar's.
 */
export function tarStream(entries: Iterable<LayerEntry>, opts: TarOptions = {}): Readable {
  const sink = new ReadableTarSink();
  // Content still being read is released once the reader is gone (done, failed or dropped).
  const signal = opts.signal ? AbortSignal.any([opts.signal, sink.gone]) : sink.gone;
  writeTar(entries, sink, { ...opts, signal }).catch((err: unknown) => {
    sink.fail(opts.signal?.aborted ? new AbortedError(opts.signal.reason) : err);
  });
  return sink.readable;
}

/**
 * About how many bytes `tarStream(entries)` writes: a header per entry, the bodies padded
 * to blocks, the two closing blocks. PAX headers of long names are not counted, so this is
 * a progress meter's total, never a size to check against.
 */
export function approximateTarSize(entries: readonly LayerEntry[]): number {
  let bytes = END_OF_ARCHIVE_BYTES;
  for (const e of entries) bytes += BLOCK + (e.type === "file" ? e.size + paddingLength(e.size) : 0);
  return bytes;
}
