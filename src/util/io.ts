import { close, createReadStream, createWriteStream, open, write, writev, type ReadStream, type WriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { once } from "node:events";
import { Transform, Writable } from "node:stream";
import { giveBack } from "./loaned-buffers.js";

/**
 * Buffer sizes for streaming blobs and layers to and from files. Node's defaults (64 KiB
 * reads, 16 KiB of write buffer) make a pipeline wait for each write before it reads on, so
 * reading and writing never overlap; a few MiB of write buffer lets them, for a few MiB of
 * memory per stream.
 */
export const READ_CHUNK = 1024 * 1024;
/** The write buffer of fileWriter's streams, in bytes (4 MiB). */
export const WRITE_BUFFER = 4 * 1024 * 1024;

/** A write stream to `path` with a WRITE_BUFFER-sized buffer; truncates an existing file. `mode` applies when it creates one. */
export function fileWriter(path: string, mode?: number): WriteStream {
  return createWriteStream(path, { highWaterMark: WRITE_BUFFER, ...(mode !== undefined ? { mode } : {}) });
}

/**
 * Removes the file a write stream was writing, once the stream is closed (it is destroyed
 * first, if it is not). A write stream destroyed before its file is open still opens, and so
 * creates, the file: removed before that, a failed write left a file behind.
 */
export async function removeWhenClosed(stream: WriteStream, path: string): Promise<void> {
  if (!stream.closed) {
    const closed = once(stream, "close").catch(() => {});
    stream.destroy();
    await closed;
  }
  await rm(path, { force: true });
}

/**
 * fileWriter's stream, that also gives back each lent chunk (loaned-buffers.ts) as soon as
 * it is written, for the end of a pipeline whose producer lends its chunks.
 */
export function givingBackFileWriter(path: string): WriteStream {
  return createWriteStream(path, {
    highWaterMark: WRITE_BUFFER,
    fs: {
      open,
      close,
      write: (fd: number, buffer: Buffer, offset: number, length: number, position: number | null, done: WriteDone<Buffer>) =>
        write(fd, buffer, offset, length, position, (err, written, same) => {
          if (err === null && offset === 0 && written === buffer.length) giveBack(buffer);
          done(err, written, same);
        }),
      writev: (fd: number, buffers: Buffer[], position: number | null, done: WriteDone<Buffer[]>) =>
        writev(fd, buffers, position, (err, written, same) => {
          // A short write leaves the rest to be written again; what was written whole is done.
          let left = err === null ? written : 0;
          for (const buffer of buffers) {
            if (left < buffer.length) break;
            left -= buffer.length;
            giveBack(buffer);
          }
          done(err, written, same);
        }),
    },
  });
}

type WriteDone<T> = (err: NodeJS.ErrnoException | null, written: number, buffers: T) => void;

/** A read stream of `path` in READ_CHUNK-sized chunks. */
export function fileReader(path: string): ReadStream {
  return createReadStream(path, { highWaterMark: READ_CHUNK });
}

/** A stream that takes everything and keeps nothing: the end of a pipeline read only to be checked. */
export function discarding(): Writable {
  return new Writable({ write(_chunk, _enc, cb) { cb(); } });
}

/** Writes the chunks it is given one after another into the open file `fd`, from `position` on. */
function appendingAt(fd: number, position: number): (chunk: Buffer) => Promise<void> {
  let at = position;
  return async (chunk) => {
    await writeFullyAt(fd, chunk, at);
    at += chunk.length;
  };
}

/**
 * A pass-through that also writes the bytes into the open file `fd`, from `position` on, each
 * chunk passed on once it is there (so a lent chunk is given back only after both writes).
 */
export function copyingInto(fd: number, position: number): Transform {
  const append = appendingAt(fd, position);
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      append(chunk).then(() => cb(null, chunk), cb);
    },
  });
}

/**
 * A stream that writes its bytes into the open file `fd` from `position` on and gives back
 * each lent chunk once written (the end of a pipeline whose producer lends its chunks).
 */
export function givingBackWriterAt(fd: number, position: number): Writable {
  const append = appendingAt(fd, position);
  return new Writable({
    highWaterMark: WRITE_BUFFER,
    write(chunk: Buffer, _enc, cb) {
      append(chunk).then(() => { giveBack(chunk); cb(); }, cb);
    },
  });
}

/** A read stream of `length` (at least 1) bytes of the file `path` from `position` on. */
export function fileRegionReader(path: string, position: number, length: number): ReadStream {
  // A read stream's `end` is inclusive.
  return createReadStream(path, { start: position, end: position + length - 1, highWaterMark: READ_CHUNK });
}

/** Writes all of `bytes` at `position` of `fd` (a write to a regular file may be short). */
export async function writeFullyAt(fd: number, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    done += await new Promise<number>((resolve, reject) => {
      write(fd, bytes, done, bytes.length - done, position + done, (err, n) => (err ? reject(err) : resolve(n)));
    });
  }
}

/**
 * Writes `pieces` of text as UTF-8 to `fd` from `position` on, each encoded into one buffer
 * that is reused, and returns where the text ends. Written as strings, each piece would
 * first become a Buffer of its own: a cache file of 100,000 rows left 13 MB of them to the
 * collector, on top of the build's peak (bench/README.md). `onBytes` sees each piece's bytes
 * before they are written (to hash them), valid until it returns.
 */
export async function writeTextPieces(fd: number, pieces: Iterable<string>, position: number, onBytes?: (bytes: Buffer) => void): Promise<number> {
  let buffer = Buffer.alloc(0);
  let at = position;
  for (const piece of pieces) {
    // A UTF-16 code unit takes at most three bytes of UTF-8.
    if (buffer.length < piece.length * 3) buffer = Buffer.allocUnsafeSlow(piece.length * 3);
    const bytes = buffer.subarray(0, buffer.write(piece, "utf8"));
    onBytes?.(bytes);
    await writeFullyAt(fd, bytes, at);
    at += bytes.length;
  }
  return at;
}

/** A pass-through that tells `onBytes` the length of each chunk, and the chunk (a progress meter's feed, a hash). */
export function counting(onBytes: (bytes: number, chunk: Buffer) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) { onBytes(chunk.length, chunk); cb(null, chunk); },
  });
}
