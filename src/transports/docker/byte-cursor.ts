import type { Readable } from "node:stream";
import { DigestMismatchError } from "../../model/errors.js";

/**
 * Reads a stream in consecutive spans of exact lengths (`take`), so one source can feed
 * several requests, each streaming its part as it is read. `skip` passes over a prefix
 * (a resumed upload), `end` reads to the end, which is when a verifying source checks
 * its digest.
 */
export class ByteCursor {
  private readonly iterator: AsyncIterator<Buffer>;
  private leftover: Buffer | undefined;

  constructor(source: Readable, private readonly what: string) {
    this.iterator = (source as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  /** Exactly `length` bytes, in the source's own chunks (split where a span ends). */
  async *take(length: number): AsyncGenerator<Buffer> {
    let left = length;
    while (left > 0) {
      const chunk = await this.next(left);
      if (!chunk) throw new DigestMismatchError(`${this.what} ended ${left} bytes before its declared size`);
      left -= chunk.length;
      yield chunk;
    }
  }

  async skip(length: number): Promise<void> {
    for await (const _ of this.take(length)) { /* passed over */ }
  }

  /** Reads what is left, which must be nothing. */
  async end(): Promise<void> {
    if (await this.next(Infinity)) throw new DigestMismatchError(`${this.what} is longer than its declared size`);
  }

  private async next(max: number): Promise<Buffer | undefined> {
    let chunk = this.leftover;
    this.leftover = undefined;
    if (!chunk) {
      const step = await this.iterator.next();
      if (step.done) return undefined;
      chunk = step.value;
    }
    if (chunk.length > max) {
      this.leftover = chunk.subarray(max);
      chunk = chunk.subarray(0, max);
    }
    return chunk;
  }
}
