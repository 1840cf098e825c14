import { close, createReadStream, createWriteStream, open, write, writev, type ReadStream, type WriteStream } from "node:fs";
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

/** A pass-through that tells `onBytes` the length of each chunk, and the chunk (a progress meter's feed, a hash). */
export function counting(onBytes: (bytes: number, chunk: Buffer) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) { onBytes(chunk.length, chunk); cb(null, chunk); },
  });
}
