import { closeSync, fstatSync, readSync } from "node:fs";
import { addAbortSignal, type Readable } from "node:stream";
import { DigestMismatchError, GantryError, SourceUnreadableError } from "../model/errors.js";
import { openSourceSync, sourceUnreadable } from "./source-error.js";
import type { TarSink } from "../tar/sink.js";
import type { Hash } from "node:crypto";

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
 * Writes the bytes of `content`, exactly `size` of them, into the tar sink, each also given
 * to `hash` when there is one. Whatever it opened is released when it ends or fails;
 * `signal` (aborted when the tar is gone) also stops a stream that is still waiting for bytes.
 */
export async function copyContent(content: FileContent, size: number, sink: TarSink, signal: AbortSignal, hash?: Hash): Promise<void> {
  if (content.kind === "hostFile") {
    await copyHostFile(content.path, size, sink, hash);
    return;
  }
  for await (const chunk of streamChunks(content, size, signal)) {
    hash?.update(chunk);
    await sink.give(chunk);
  }
}

/**
 * A host file's bytes, read with synchronous calls straight into the sink's buffer: most
 * files of a layer are small, and four promised calls per file (open, stat, read, close),
 * each a trip through the thread pool, cost a hundred times the read itself on a tree of
 * many small files. A read fills at most the sink's buffer (about a MiB) from the page
 * cache, which blocks the event loop for well under a millisecond.
 */
async function copyHostFile(path: string, size: number, sink: TarSink, hash: Hash | undefined): Promise<void> {
  const changed = (now: number): GantryError => new SourceUnreadableError(`the source file ${path} changed size while the layer was built (${size} bytes when walked, ${now} now); build again once it stops changing`);
  const fd = openSourceSync(path);
  try {
    const now = fstatSync(fd).size;
    if (now !== size) throw changed(now);
    let offset = 0;
    while (offset < size) {
      const space = sink.space();
      let n: number;
      try {
        n = readSync(fd, space, 0, Math.min(space.length, size - offset), offset);
      } catch (err) {
        throw sourceUnreadable(path, err);
      }
      if (n === 0) throw changed(offset);
      offset += n;
      hash?.update(space.subarray(0, n));
      const wait = sink.filled(n);
      if (wait !== undefined) await wait;
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
