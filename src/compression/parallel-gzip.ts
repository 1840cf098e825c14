import { availableParallelism } from "node:os";
import { Transform, type TransformCallback } from "node:stream";
import { UnsupportedError } from "../model/errors.js";
import { BLOCK_SIZE, DICTIONARY_SIZE, crc32, deflateBlock, gzipHeader, gzipTrailer, type BlockJob } from "./gzip-block.js";
import { DeflatePool, DeflatePoolFailure } from "./gzip-pool.js";
import { lend } from "../util/loaned-buffers.js";

/**
 * gzip on several cores with bytes that depend on the input and the level alone.
 *
 * One gzip member: the header Node's createGzip writes, then the input's blocks deflated
 * as gzip-block.ts describes (on worker threads once the input is large enough to pay
 * for starting them, on the calling thread before that), concatenated in input order,
 * then the crc32 and length of the whole input. Which thread deflated a block never
 * shows in the output, so the thread count, the timing and the switch to workers leave
 * the bytes unchanged.
 *
 * Memory stays bounded: at most 2 × threads blocks are out for compression at once; a
 * further block waits until the oldest is written out, and writes wait, as for any
 * Transform, while the reader is behind.
 */

/** More threads than this gain little on one layer and crowd out hashing and reading. */
const MAX_DEFAULT_THREADS = 8;

/**
 * Below this much input, blocks are deflated on the calling thread. Starting two workers
 * takes 60–80 ms and about 160 ms of CPU, as long as deflating 4–8 MiB on one thread;
 * measured in bench/compress.ts, workers paid off from about 8 MiB and broke even at 4.
 */
export const DEFAULT_PARALLEL_AFTER = 8 * BLOCK_SIZE;

/** Options for createParallelGzip: only `level` changes the output bytes. */
export interface ParallelGzipOptions {
  /** zlib level 0–9 (-1 means zlib's default, 6). */
  level: number;
  /** Worker threads; 0 deflates every block on the calling thread. Default: the cores available, at most 8. */
  threads?: number;
  /** Input bytes deflated on the calling thread before the workers start. Default DEFAULT_PARALLEL_AFTER. */
  parallelAfter?: number;
}

/** The worker threads a gzip stream uses unless told: the cores available, at least 1 and at most 8. */
export function defaultGzipThreads(): number {
  return Math.max(1, Math.min(availableParallelism(), MAX_DEFAULT_THREADS));
}

/**
 * A gzip stream whose bytes depend on the input and the level alone. Throws an UnsupportedError at
 * once for a level outside 0–9 (-1 aside), or a thread count or threshold that is not a whole number.
 */
export function createParallelGzip(options: ParallelGzipOptions): Transform {
  return new ParallelGzip(options);
}

/**
 * Where a block's bytes and its dictionary live: shared memory, which a worker reads in place
 * rather than getting a copy. Copies would be garbage in the worker's heap, and V8 collects
 * such external memory only every few tens of MiB, per worker: peak RSS grew by 100 MiB.
 * Slots go round: a slot is filled again once its block's output is written.
 */
interface Slot {
  data: Buffer;
  dictionary: Buffer;
}

function newSlot(): Slot {
  return {
    data: Buffer.from(new SharedArrayBuffer(BLOCK_SIZE)),
    dictionary: Buffer.from(new SharedArrayBuffer(DICTIONARY_SIZE)),
  };
}

/** A block given out for compression, whose result is written once every earlier one is. */
interface PendingBlock {
  result: Promise<Buffer>;
  settled: boolean;
  slot: Slot;
}

function track(result: Promise<Buffer>, slot: Slot): PendingBlock {
  const pending: PendingBlock = { result, settled: false, slot };
  // Also keeps a failure that nobody awaits yet (the stream may be destroyed first) from counting as unhandled.
  result.then(() => { pending.settled = true; }, () => { pending.settled = true; });
  return pending;
}

/**
 * Deflates on the calling thread in a later turn of the event loop, so that a source that
 * never waits for I/O still lets timers, I/O and the workers' messages through between blocks.
 */
function deflateSoon(job: BlockJob): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    setImmediate(() => {
      try {
        resolve(deflateBlock(job));
      } catch (err) {
        reject(err);
      }
    });
  });
}

function checkLevel(level: number): number {
  if (level === -1) return 6;
  if (!Number.isInteger(level) || level < 0 || level > 9) {
    throw new UnsupportedError(`gzip level ${level} is not supported: use an integer from 0 to 9`);
  }
  return level;
}

function checkCount(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 0) {
    throw new UnsupportedError(`gzip ${what} ${value} is not supported: use a whole number, 0 or more`);
  }
  return value;
}

class ParallelGzip extends Transform {
  private readonly level: number;
  private readonly threads: number;
  private readonly parallelAfter: number;
  /** How many blocks may be out for compression or waiting to be written. */
  private readonly window: number;

  /** The slot being filled; its dictionary holds the end of the block before (when there is one). */
  private slot: Slot = newSlot();
  /** Slots of blocks already written out. */
  private readonly spare: Slot[] = [];
  private filled = 0;
  private hasDictionary = false;
  private crc = 0;
  private length = 0;
  private readonly pending: PendingBlock[] = [];
  private headerWritten = false;
  private pool: DeflatePool | undefined;
  /** Workers are started once per stream; after a failure the calling thread deflates the rest. */
  private poolTried = false;

  constructor(options: ParallelGzipOptions) {
    super({ readableHighWaterMark: BLOCK_SIZE });
    this.level = checkLevel(options.level);
    this.threads = checkCount(options.threads ?? defaultGzipThreads(), "thread count");
    this.parallelAfter = checkCount(options.parallelAfter ?? DEFAULT_PARALLEL_AFTER, "parallel threshold");
    this.window = 2 * Math.max(1, this.threads);
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

  private async ingest(chunk: Buffer): Promise<void> {
    this.crc = crc32(chunk, this.crc);
    this.length += chunk.length;
    let offset = 0;
    while (offset < chunk.length) {
      const copied = chunk.copy(this.slot.data, this.filled, offset);
      offset += copied;
      this.filled += copied;
      if (this.filled === BLOCK_SIZE) await this.sealBlock(false);
    }
    // Pass on what is already compressed, without waiting for what is not.
    while (this.pending[0]?.settled === true) await this.writeOldest();
  }

  private async finish(): Promise<void> {
    await this.sealBlock(true);
    while (this.pending.length > 0) await this.writeOldest();
    this.push(gzipTrailer(this.crc, this.length));
    const pool = this.pool;
    this.pool = undefined;
    void pool?.close();
  }

  /** Gives the filled block out for compression, once the window has room. */
  private async sealBlock(last: boolean): Promise<void> {
    while (this.pending.length >= this.window) await this.writeOldest();
    const slot = this.slot;
    const job: BlockJob = {
      input: last ? slot.data.subarray(0, this.filled) : slot.data,
      dictionary: this.hasDictionary ? slot.dictionary : undefined,
      last,
      level: this.level,
    };
    if (!last) {
      this.slot = this.spare.pop() ?? newSlot();
      slot.data.copy(this.slot.dictionary, 0, BLOCK_SIZE - DICTIONARY_SIZE);
      this.hasDictionary = true;
    }
    this.filled = 0;
    this.pending.push(track(this.deflate(job), slot));
  }

  private deflate(job: BlockJob): Promise<Buffer> {
    const pool = this.workers();
    // Until a worker is loaded, the calling thread goes on deflating rather than wait; so it
    // does for good when none ever loads (a bundle that left gzip-worker.js behind, say).
    if (pool === undefined || !pool.ready) return deflateSoon(job);
    return pool.run(job).catch((err: unknown) => {
      // A worker that died costs speed, not the result: its blocks are deflated here.
      if (!(err instanceof DeflatePoolFailure) || this.destroyed) throw err;
      return deflateBlock(job);
    });
  }

  /** The worker pool, started the first time the input is past the threshold. */
  private workers(): DeflatePool | undefined {
    if (!this.poolTried && this.threads > 0 && this.length > this.parallelAfter) {
      this.poolTried = true;
      this.pool = new DeflatePool(this.threads);
    }
    return this.pool;
  }

  private async writeOldest(): Promise<void> {
    const oldest = this.pending.shift();
    if (oldest === undefined) return;
    const output = await oldest.result;
    // Deflated: nobody reads the slot any more, so it can hold a later block.
    this.spare.push(oldest.slot);
    if (!this.headerWritten) {
      this.headerWritten = true;
      this.push(gzipHeader(this.level));
    }
    // Each block's output owns its memory and is referenced nowhere else: lent, so that a
    // pipeline's last stage can free it at once (loaned-buffers.ts).
    this.push(lend(output));
  }
}
