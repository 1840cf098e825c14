import { closeSync, fstatSync, readSync } from "node:fs";
import { addAbortSignal, type Readable } from "node:stream";
import { DigestMismatchError, GantryError, SourceUnreadableError } from "../model/errors.js";
import { openSourceSync, sourceUnreadable } from "./source-error.js";
import { NotInPlaceError, type TarSink } from "../tar/sink.js";
import type { ContentDigester } from "../model/digest.js";

/**
 * Where the bytes of a regular file in a tar come from, and the reading of them. A tar
 * header states the size before the body follows, so each kind must deliver exactly that
 * many bytes or fail: a body that ran short or long would shift every entry after it.
 *
 * - `hostFile`: a file on this machine (a walked build source, a flatten spool file). It
 *   must still have the size the walk saw; if not, the error names the file.
 * - `stream`: bytes opened on demand (a blob going into an image archive). The error for a
 *   stream that runs short or long names `what`, since a stream has no path to point at.
 * - `present`: bytes already at offset `at` of the file the tar is written into (a layer
 *   packed straight into its archive: archive/assembly.ts); the sink goes past them.
 */
export type FileContent =
  | { kind: "hostFile"; path: string }
  | { kind: "stream"; open: (signal?: AbortSignal) => Promise<Readable>; what: string }
  | { kind: "present"; at: number; what: string };

/**
 * Writes the bytes of `content`, exactly `size` of them, into the tar sink, each also given
 * to `hash` when there is one. Whatever it opened is released when it ends or fails;
 * `signal` (aborted when the tar is gone) also stops a stream that is still waiting for bytes.
 */
export async function copyContent(content: FileContent, size: number, sink: TarSink, signal: AbortSignal, hash?: ContentDigester): Promise<void> {
  if (content.kind === "hostFile") {
    await copyHostFile(content.path, size, sink, hash);
    return;
  }
  if (content.kind === "present") {
    // Bytes not read cannot be hashed; only an archive, which asks for no digest, is written in place.
    if (sink.skip === undefined || hash !== undefined) throw new NotInPlaceError(`${content.what} cannot be left in place here`);
    await sink.skip(size, content.at);
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
 *
 * The file must still have the size the walk saw. Rather than an fstat per file, the last
 * read asks for one byte more than is left: a file that grew returns it, one that shrank
 * returns less. (When the rest fills the buffer exactly, a one-byte read past the end checks.)
 */
async function copyHostFile(path: string, size: number, sink: TarSink, hash: ContentDigester | undefined): Promise<void> {
  const fd = openSourceSync(path);
  const changed = (now: number): GantryError => new SourceUnreadableError(`the source file ${path} changed size while the layer was built (${size} bytes when walked, ${now} now); build again once it stops changing`);
  const read = (into: Buffer, at: number, length: number, position: number): number => {
    try {
      return readSync(fd, into, at, length, position);
    } catch (err) {
      throw sourceUnreadable(path, err);
    }
  };
  try {
    let offset = 0;
    let probed = false;
    do {
      const { buffer, used } = sink;
      const free = buffer.length - used;
      const rest = size - offset;
      probed = rest < free;
      const n = read(buffer, used, probed ? rest + 1 : free, offset);
      if (n > rest) throw changed(fstatSync(fd).size);
      if (n === 0 && rest > 0) throw changed(fstatSync(fd).size);
      if (n === 0) break;
      const piece = buffer.subarray(used, used + n);
      if (offset + n === size) hash?.last(piece);
      else hash?.update(piece);
      offset += n;
      const wait = sink.filled(n);
      if (wait !== undefined) await wait;
    } while (offset < size);
    if (!probed && read(Buffer.alloc(1), 0, 1, size) > 0) throw changed(fstatSync(fd).size);
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
