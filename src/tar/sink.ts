/**
 * Where a tar writer puts its bytes: into a buffer the sink owns, in place. A file's body
 * is read straight into that buffer (no chunk of its own, no copy), and a full buffer is
 * handed on whole, so the cost per entry is a header copy rather than a trip through a
 * stream. The sink decides what a full buffer becomes (a hashed and compressed layer block,
 * a chunk of a readable stream).
 */
export interface TarSink {
  /**
   * The buffer being filled: its free space runs from `used` to its end and is never
   * empty. Both are valid until the next `filled` or `give` (a writer fills the space at an
   * offset rather than through a view, which would cost an object per write).
   */
  readonly buffer: Buffer;
  readonly used: number;
  /**
   * Records that `n` bytes were written at `used`. When that filled the buffer and it was
   * handed on, returns a promise to wait for before writing more (the sink's reader is
   * behind, or it failed); otherwise undefined, so small writes cost no promise.
   */
  filled(n: number): Promise<void> | undefined;
  /**
   * Writes `bytes`, which the caller gives away (neither it nor anyone else writes to them
   * again: a header just encoded, a chunk read from a stream). Large ones may be handed on
   * as they are rather than copied.
   */
  give(bytes: Buffer): Promise<void>;
  /** The tar is complete: hands on what is buffered. */
  close(): Promise<void>;
  /**
   * For a sink writing into a file whose bytes are partly there already (file-sink.ts): goes
   * past `count` bytes without writing them, which must start at offset `at` of the file.
   * Throws NotInPlaceError when they would not.
   */
  skip?(count: number, at: number): Promise<void>;
}

/** A tar written in place found a body elsewhere than where it already is: the file must be written whole. */
export class NotInPlaceError extends Error {}

/** Writes `count` zero bytes into the sink, in place. */
export async function putZeros(sink: TarSink, count: number): Promise<void> {
  let left = count;
  while (left > 0) {
    const n = Math.min(left, sink.buffer.length - sink.used);
    sink.buffer.fill(0, sink.used, sink.used + n);
    left -= n;
    const wait = sink.filled(n);
    if (wait !== undefined) await wait;
  }
}

/**
 * Where a ChunkedTarSink's chunks come from: "reuse" (one buffer, filled again once the
 * last chunk is taken), "fresh" (a buffer of its own for each chunk, which the reader may
 * keep), or a function that gives the space to fill next: another stage's own buffer (a
 * compressor's block), so the tar is written in place there and never copied into it.
 */
export type ChunkSource = "reuse" | "fresh" | (() => Buffer);

/**
 * A sink that fills chunks of `chunkSize` bytes (or of the space its source gives) and hands
 * each on when full (the last one when the tar closes, however short; a given chunk of
 * `chunkSize` or more, as it is, unless the source gives the space). The next chunk is
 * taken from the source once `handOn`'s promise resolves, when the reader is done with the
 * last one.
 */
export abstract class ChunkedTarSink implements TarSink {
  private chunk: Buffer | undefined;
  private filledTo = 0;

  constructor(private readonly chunkSize: number, private readonly source: ChunkSource) {}

  get buffer(): Buffer {
    return (this.chunk ??= typeof this.source === "function" ? this.source() : Buffer.allocUnsafe(this.chunkSize));
  }

  get used(): number {
    return this.filledTo;
  }

  filled(n: number): Promise<void> | undefined {
    this.filledTo += n;
    return this.filledTo === this.buffer.length ? this.flush() : undefined;
  }

  async give(bytes: Buffer): Promise<void> {
    let offset = 0;
    while (offset < bytes.length) {
      let wait: Promise<void> | undefined;
      if (this.filledTo === 0 && typeof this.source !== "function" && bytes.length - offset >= this.chunkSize) {
        // A chunk's worth or more, and nothing buffered before it: on it goes, uncopied (into
        // a source's space it is copied either way, and the space must follow what was written).
        wait = this.handOn(bytes.subarray(offset));
        offset = bytes.length;
      } else {
        const copied = bytes.copy(this.buffer, this.filledTo, offset);
        offset += copied;
        wait = this.filled(copied);
      }
      if (wait !== undefined) await wait;
    }
  }

  async close(): Promise<void> {
    if (this.filledTo > 0) await this.flush();
  }

  /** Takes a chunk; a returned promise holds the writer until it resolves. */
  protected abstract handOn(chunk: Buffer): Promise<void> | undefined;

  private flush(): Promise<void> | undefined {
    const full = this.buffer.subarray(0, this.filledTo);
    if (this.source !== "reuse") this.chunk = undefined;
    this.filledTo = 0;
    return this.handOn(full);
  }
}
