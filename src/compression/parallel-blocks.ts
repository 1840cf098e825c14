import { availableParallelism } from "node:os";
import { Transform, type TransformCallback } from "node:stream";
import { UnsupportedError } from "../model/errors.js";
import { compressBlock, type BlockFormatName, type BlockJob } from "./block-job.js";
import { BlockPool, BlockPoolFailure } from "./block-pool.js";
import { giveBack, lend } from "../util/loaned-buffers.js";

/**
 * Compression on several cores with bytes that depend on the input, the format and the
 * level alone: gzip (parallel-gzip.ts) and zstd (parallel-zstd.ts) both cut their input into
 * fixed-size blocks, compress each on its own (on worker threads once the input is large
 * enough to pay for starting them, on the calling thread before that), and write the
 * results in input order between the format's header and trailer. Which thread compressed a
 * block never shows in the output, so the thread count, the timing and the switch to
 * workers leave the bytes unchanged.
 *
 * Memory stays bounded: at most 2 × threads blocks are out for compression at once; a
 * further block waits until the oldest is written out, and writes wait, as for any
 * Transform, while the reader is behind.
 */

/** More threads than this gain little on one layer and crowd out hashing and reading. */
const MAX_DEFAULT_THREADS = 8;

/** How a format cuts and frames its blocks. */
export interface BlockFormat {
  name: BlockFormatName;
  /** Input per block; the block size is part of the format, never a matter of threads. */
  blockSize: number;
  /** Input compressed on the calling thread before the workers start, unless told otherwise. */
  parallelAfter: number;
  /** The level as the compressor takes it; throws an UnsupportedError for one it does not take. */
  checkLevel(level: number): number;
  /** What precedes the first block's output. */
  header?(level: number): Buffer;
  /** What follows the last block's output, from the crc32 and length of the whole input. */
  trailer?(crc: number, length: number): Buffer;
  /** The running crc32 the trailer needs. */
  crc32?(data: Uint8Array, crc: number): number;
}

/** Options for a parallel compressor: only `level` changes the output bytes. */
export interface ParallelOptions {
  /** The compressor's level (see the format's checkLevel). */
  level: number;
  /** Worker threads; 0 compresses every block on the calling thread. Default: the cores available, at most 8. */
  threads?: number;
  /** Input bytes compressed on the calling thread before the workers start. Default: the format's. */
  parallelAfter?: number;
  /**
   * How long the input is expected to be, when known: past `parallelAfter`, the workers start
   * with the stream rather than once that much input is in, and are loaded sooner.
   */
  expectedLength?: number | undefined;
}

/** The worker threads a compressing stream uses unless told: the cores available, at least 1 and at most 8. */
export function defaultCompressionThreads(): number {
  return Math.max(1, Math.min(availableParallelism(), MAX_DEFAULT_THREADS));
}

/**
 * A block's bytes live in a slot of shared memory, which a worker reads in place rather than
 * getting a copy. Copies would be garbage in the worker's heap, and V8 collects such
 * external memory only every few tens of MiB, per worker: peak RSS grew by 100 MiB.
 * Slots go round: a slot is filled again once its block's output is written.
 */
function newSlot(format: BlockFormat): Buffer {
  return Buffer.from(new SharedArrayBuffer(format.blockSize));
}

/** A block given out for compression, whose result is written once every earlier one is. */
interface PendingBlock {
  result: Promise<Buffer>;
  settled: boolean;
  slot: Buffer;
}

function track(result: Promise<Buffer>, slot: Buffer): PendingBlock {
  const pending: PendingBlock = { result, settled: false, slot };
  // Also keeps a failure that nobody awaits yet (the stream may be destroyed first) from counting as unhandled.
  result.then(() => { pending.settled = true; }, () => { pending.settled = true; });
  return pending;
}

/**
 * Runs `work` in a later turn of the event loop, so that a source that never waits for I/O
 * still lets timers, I/O and the workers' messages through between blocks.
 */
function soon(work: () => Buffer | Promise<Buffer>): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    setImmediate(() => {
      try {
        resolve(work());
      } catch (err) {
        reject(err);
      }
    });
  });
}

function checkCount(format: BlockFormat, value: number, what: string): number {
  if (!Number.isInteger(value) || value < 0) {
    throw new UnsupportedError(`${format.name} ${what} ${value} is not supported: use a whole number, 0 or more`);
  }
  return value;
}

/** A compressing stream of `format`, as described above. Throws an UnsupportedError for options out of range. */
export class ParallelBlockCompressor extends Transform {
  private readonly level: number;
  private readonly threads: number;
  /**
   * The input length past which the workers start: the threshold, or -1 (at once) when the
   * whole input is expected past it.
   */
  private readonly workersAfter: number;
  /** How many blocks may be out for compression or waiting to be written. */
  private readonly window: number;

  /** The slot being filled. */
  private slot: Buffer;
  /** Slots of blocks already written out. */
  private readonly spare: Buffer[] = [];
  private filled = 0;
  private crc = 0;
  private length = 0;
  private readonly pending: PendingBlock[] = [];
  private headerWritten = false;
  private pool: BlockPool | undefined;
  /** Workers are started once per stream; after a failure the calling thread compresses the rest. */
  private poolTried = false;

  constructor(private readonly format: BlockFormat, options: ParallelOptions) {
    // About one block's output waits for the reader (gzip's 512 KiB; zstd's 4 MiB frames, at most 1 MiB).
    super({ readableHighWaterMark: Math.min(format.blockSize, 1024 * 1024) });
    this.level = format.checkLevel(options.level);
    this.threads = checkCount(format, options.threads ?? defaultCompressionThreads(), "thread count");
    const parallelAfter = checkCount(format, options.parallelAfter ?? format.parallelAfter, "parallel threshold");
    this.window = 2 * Math.max(1, this.threads);
    this.slot = newSlot(format);
    // A worker takes 100-300 ms to load while the calling thread reads and tars: begun here,
    // it is loaded before the calling thread has compressed the first blocks itself.
    this.workersAfter = (options.expectedLength ?? 0) > parallelAfter ? -1 : parallelAfter;
    this.workers();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.ingest(chunk).then(() => callback(), callback);
  }

  override _flush(callback: TransformCallback): void {
    this.finish().then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.pending.length = 0;
    const pool = this.pool;
    this.pool = undefined;
    if (pool === undefined) callback(error);
    else pool.close().then(() => callback(error), () => callback(error));
  }

  /**
   * The free space of the block being filled. A writer may write its input there and then
   * write() exactly the bytes it filled (a view that starts at this space): that chunk is
   * taken where it is, not copied. The space is valid until the next write.
   */
  inputSpace(): Buffer {
    return this.slot.subarray(this.filled);
  }

  private async ingest(chunk: Buffer): Promise<void> {
    if (this.format.crc32) this.crc = this.format.crc32(chunk, this.crc);
    this.length += chunk.length;
    const { blockSize } = this.format;
    const inPlace = chunk.buffer === this.slot.buffer && chunk.byteOffset === this.slot.byteOffset + this.filled;
    let offset = 0;
    while (offset < chunk.length) {
      const taken = inPlace ? chunk.length : chunk.copy(this.slot, this.filled, offset);
      offset += taken;
      this.filled += taken;
      if (this.filled === blockSize) await this.sealBlock(false);
    }
    // Pass on what is already compressed, without waiting for what is not.
    while (this.pending[0]?.settled === true) await this.writeOldest();
  }

  private async finish(): Promise<void> {
    await this.sealBlock(true);
    while (this.pending.length > 0) await this.writeOldest();
    const trailer = this.format.trailer?.(this.crc, this.length);
    if (trailer) this.push(trailer);
    const pool = this.pool;
    this.pool = undefined;
    void pool?.close();
  }

  /** Gives the filled block out for compression, once the window has room. */
  private async sealBlock(last: boolean): Promise<void> {
    while (this.pending.length >= this.window) await this.writeOldest();
    const { slot, format } = this;
    const job: BlockJob = {
      format: format.name,
      input: last ? slot.subarray(0, this.filled) : slot,
      last,
      level: this.level,
    };
    if (!last) this.slot = this.spare.pop() ?? newSlot(format);
    this.filled = 0;
    this.pending.push(track(this.compress(job), slot));
  }

  private compress(job: BlockJob): Promise<Buffer> {
    const pool = this.workers();
    if (pool?.ready === true) return this.onWorker(pool, job);
    // Until a worker is loaded, the calling thread goes on compressing rather than wait; so it
    // does for good when none ever loads (a bundle that left block-worker.js behind, say). It
    // decides when it gets to the block, not when the block is filled: a source that never
    // waits fills the whole window at once, and a worker that said it was ready since (its
    // message is read before the turn's immediates run) takes the block instead. Deciding
    // early, the calling thread compressed the first eight 4 MiB zstd frames of a build itself.
    return soon(() => (pool?.ready === true ? this.onWorker(pool, job) : compressBlock(job)));
  }

  private onWorker(pool: BlockPool, job: BlockJob): Promise<Buffer> {
    return pool.run(job).catch((err: unknown) => {
      // A worker that died costs speed, not the result: its blocks are compressed here.
      if (!(err instanceof BlockPoolFailure) || this.destroyed) throw err;
      return compressBlock(job);
    });
  }

  /** The worker pool, started the first time the input is past `workersAfter`. */
  private workers(): BlockPool | undefined {
    if (!this.poolTried && this.threads > 0 && this.length > this.workersAfter) {
      this.poolTried = true;
      this.pool = new BlockPool(this.threads);
    }
    return this.pool;
  }

  private writeHeader(): void {
    if (this.headerWritten) return;
    this.headerWritten = true;
    const header = this.format.header?.(this.level);
    if (header) this.push(header);
  }

  private async writeOldest(): Promise<void> {
    const oldest = this.pending.shift();
    if (oldest === undefined) return;
    const output = await oldest.result;
    // Compressed: nobody reads the slot any more, so it can hold a later block.
    this.spare.push(oldest.slot);
    this.writeHeader();
    // Each block's output owns its memory and is referenced nowhere else: lent, so that a
    // pipeline's last stage can free it at once (loaned-buffers.ts).
    this.push(lend(fitted(output)));
  }
}

/**
 * A block's output in memory of its own size when it fills less than half of the memory it
 * came in, which is then freed at once. zlib hands back a view of its whole output buffer
 * (515 KiB for a gzip block) however little it wrote: 100,000 small files deflate to 17 KiB a
 * block, and the 85 blocks waiting for the reader at the peak of their build held 44 MB.
 */
function fitted(output: Buffer): Buffer {
  if (output.length * 2 >= output.buffer.byteLength) return output;
  const copy = Buffer.from(output);
  giveBack(lend(output));
  return copy;
}
