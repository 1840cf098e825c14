import { Duplex } from "node:stream";
import { ExpansionCounter, type ExpansionBound } from "./expansion.js";
import { zstdBinding, type ZstdDCtx } from "./zstd-module.js";

/**
 * zstd decompression as a stream that holds its reader's pace. zstd-napi's DecompressStream
 * decompresses each written chunk whole and pushes every block without looking at push()'s
 * answer: 78 KB of RLE blocks became 2.3 GB in memory within a second and a half. Here a
 * written chunk is decompressed one output block (128 KiB) at a time, and the rest waits
 * while the reader's buffer is full; the chunk's callback, and so the next write, waits for
 * the last block.
 *
 * It is strict as Go's decoder (containerd, docker) is: a frame cut short, a bad checksum,
 * or anything after the last frame but another frame (trailing zeros, junk) fails it.
 * Skippable frames are zstd's own and are passed over. Given a bound, output past it fails
 * the stream (expansion.ts).
 */
export class ZstdDecompressor extends Duplex {
  private readonly dctx: ZstdDCtx;
  private readonly blockSize: number;
  private readonly counter: ExpansionCounter;
  /** Whether the input so far ends inside a frame. */
  private inFrame = false;
  /** Input not yet decompressed, and the write to call back once it is. */
  private pending: { input: Buffer; done: (err?: Error | null) => void } | undefined;
  /** Set while `pump` runs, so a read it causes does not enter it again. */
  private pumping = false;

  constructor(bound?: ExpansionBound) {
    super({ readableHighWaterMark: 256 * 1024 });
    const binding = zstdBinding();
    this.dctx = new binding.DCtx();
    this.blockSize = binding.dStreamOutSize();
    this.counter = new ExpansionCounter(bound);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.pending = { input: chunk, done };
    this.pump();
  }

  override _read(): void {
    if (this.pending && !this.pumping) this.pump();
  }

  override _final(done: (err?: Error | null) => void): void {
    if (this.inFrame) {
      done(new Error("the zstd stream ends inside a frame (it is truncated)"));
      return;
    }
    this.push(null);
    done();
  }

  /** Decompresses the pending input block by block while the reader wants more. */
  private pump(): void {
    const pending = this.pending!;
    this.pumping = true;
    try {
      for (;;) {
        const out = Buffer.allocUnsafe(this.blockSize);
        const [hint, produced, consumed] = this.dctx.decompressStream(out, pending.input);
        pending.input = pending.input.subarray(consumed);
        this.inFrame = hint !== 0;
        let wantsMore = true;
        if (produced > 0) {
          const tooMuch = this.counter.add(produced);
          if (tooMuch) throw tooMuch;
          wantsMore = this.push(out.subarray(0, produced));
        }
        // zstd has taken all the input and has no more output for now (a block not filled, or
        // a frame ended: a call past its end would start reading the next frame's header).
        if (pending.input.length === 0 && (produced < out.length || hint === 0)) break;
        if (!wantsMore) return; // _read resumes
      }
    } catch (err) {
      this.pending = undefined;
      pending.done(err as Error);
      return;
    } finally {
      this.pumping = false;
    }
    this.pending = undefined;
    pending.done();
  }
}
