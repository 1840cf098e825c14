import { closeSync, fstatSync, readSync } from "node:fs";
import { addAbortSignal, type Readable } from "node:stream";
import { DigestMismatchError, GantryError, SourceUnreadableError } from "../model/errors.js";
import { openSourceSync, sourceUnreadable } from "./source-error.js";
import { READ_CHUNK } from "../util/io.js";

/**
 * Where the bytes of a regular file in a tar come from, and the reading of them. A tar
 * header states the size before the body follows, so each kind must deliver exactly that
 * many bytes or fail: a body that ran short or long would shift every entry after it.
 *
 * - `hostFile`: a file on this machine (a walked build source, a flatten spool file). It
 *   must still have the size the walk saw; if not, the error names the file.
 * - `stream`: bytes opened on demand (a blob going into an image archive). The error for a
 *   stream that runs short or long names `what`, since a stream has no path to point at.
 */
export type FileContent =
  | { kind: "hostFile"; path: string }
  | { kind: "stream"; open: (signal?: AbortSignal) => Promise<Readable>; what: string };

/**
 * The bytes of `content`, exactly `size` of them, read as they are iterated. Whatever it
 * opened is released when the iteration ends, fails or is abandoned; `signal` (aborted when
 * the tar is gone) also stops a stream that is still waiting for bytes.
 */
export function contentChunks(content: FileContent, size: number, signal: AbortSignal): AsyncIterable<Buffer> {
  return content.kind === "hostFile" ? hostFileChunks(content.path, size) : streamChunks(content, size, signal);
}


/**
 * A host file's bytes, read with synchronous calls: most files of a layer are small, and
 * four promised calls per file (open, stat, read, close), each a trip through the thread
 * pool, cost a hundred times the read itself on a tree of many small files. A read of up
 * to READ_CHUNK from the page cache blocks the event loop for well under a millisecond,
 * and the consumer's await between chunks lets everything else through.
 */
async function* hostFileChunks(path: string, size: number): AsyncGenerator<Buffer> {
  const changed = (now: number): GantryError => new SourceUnreadableError(`the source file ${path} changed size while the layer was built (${size} bytes when walked, ${now} now); build again once it stops changing`);
  const fd = openSourceSync(path);
  try {
    const now = fstatSync(fd).size;
    if (now !== size) throw changed(now);
    let offset = 0;
    while (offset < size) {
      const chunk = Buffer.allocUnsafe(Math.min(READ_CHUNK, size - offset));
      let n: number;
      try {
        n = readSync(fd, chunk, 0, chunk.length, offset);
      } catch (err) {
        throw sourceUnreadable(path, err);
      }
      if (n === 0) throw changed(offset);
      offset += n;
      yield n === chunk.length ? chunk : chunk.subarray(0, n);
    }
  } finally {
    closeSync(fd);
  }
}

async function* streamChunks(content: Extract<FileContent, { kind: "stream" }>, size: number, signal: AbortSignal): AsyncGenerator<Buffer> {
  const source = addAbortSignal(signal, await content.open(signal));
  let seen = 0;
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      seen += chunk.length;
      // Fail before passing on a byte past the declared size.
      if (seen > size) throw new DigestMismatchError(`${content.what} produced more than its declared ${size} bytes`);
      yield chunk;
    }
  } finally {
    source.destroy();
  }
  if (seen !== size) throw new DigestMismatchError(`${content.what} produced ${seen} bytes, not its declared ${size}`);
}
