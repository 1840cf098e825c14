import { Worker } from "node:worker_threads";
import { AbortedError, IoError } from "../model/errors.js";
import type { BlockJob } from "./block-job.js";
import type { WorkerMessage } from "./block-worker.js";
import { workerScript } from "../util/worker-script.js";

/**
 * A fixed set of worker threads that compress blocks (block-job.ts), one job per worker at
 * a time, jobs started in the order they were given. Each compressing stream owns its pool and closes
 * it when it ends or is destroyed. A worker takes jobs once it says it is loaded (about
 * 60–80 ms after it is made); `ready` tells whether any has.
 *
 * An idle worker is unref'd: a stream that is abandoned half-way never keeps the process
 * alive, while a worker with a job does, so a pending result is never lost to an exit.
 */

/** The pool cannot compress (a worker failed to start or died): the job can be done elsewhere. */
export class BlockPoolFailure extends Error {
  constructor(options: { cause: unknown }) {
    super("a compression worker failed", options);
    this.name = "BlockPoolFailure";
  }
}

interface QueuedJob {
  job: BlockJob;
  resolve: (output: Buffer) => void;
  reject: (err: unknown) => void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  current: QueuedJob | undefined;
}

// Spelled from the compression folder so that it resolves the same from the CLI bundle (dist/src/cli).
const WORKER_URL = workerScript(new URL("../compression/block-worker.js", import.meta.url));

/**
 * `threads` compression workers, started at construction, running jobs in the order given. A job fails with
 * an IoError when the compressor fails it, with BlockPoolFailure (as does every job then pending) when a worker
 * breaks, with an AbortedError once the pool is broken or closed. Its owner must `close` it.
 */
export class BlockPool {
  private readonly slots: Slot[] = [];
  private readonly queue: QueuedJob[] = [];
  private closed = false;

  constructor(threads: number) {
    for (let i = 0; i < threads; i++) this.slots.push(this.startWorker());
  }

  /** Whether a worker is loaded and the pool has not failed. */
  get ready(): boolean {
    return !this.closed && this.slots.some((slot) => slot.ready);
  }

  /** Compresses `job` on a worker. Rejects with BlockPoolFailure if the pool broke. */
  run(job: BlockJob): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(new AbortedError(undefined, "the compressing stream was closed before a block was compressed"));
        return;
      }
      this.queue.push({ job, resolve, reject });
      this.dispatch();
    });
  }

  /** Stops every worker; jobs not yet answered are rejected. */
  async close(): Promise<void> {
    this.closed = true;
    this.rejectAll(new AbortedError(undefined, "the compressing stream was closed before a block was compressed"));
    // Idle workers are unreferenced; referenced while they terminate, so the process waits
    // for them and a destroyed stream still gets to emit 'close'.
    await Promise.all(this.slots.map((slot) => {
      slot.worker.ref();
      return slot.worker.terminate();
    }));
  }

  private startWorker(): Slot {
    // No flags of the parent's: the worker needs none, and some (--input-type, with `node -e`) stop it from starting.
    // A worker's heap holds a block and its output at a time: a small young generation makes
    // it collect them as it goes instead of growing to V8's defaults (peak RSS, bench/README.md).
    const worker = new Worker(WORKER_URL, { execArgv: [], resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 32 } });
    const slot: Slot = { worker, ready: false, current: undefined };
    worker.on("message", (message: WorkerMessage) => {
      // A reply that comes after close() changes nothing (and must not unreference a worker
      // that is terminating).
      if (this.closed) return;
      if ("ready" in message) {
        slot.ready = true;
        this.dispatch();
      } else {
        this.answer(slot, message);
      }
    });
    worker.on("error", (err) => this.fail(err));
    worker.on("exit", (code) => {
      if (!this.closed) this.fail(new Error(`a compression worker exited with code ${code}`));
    });
    // After the listeners: adding a message listener refs the worker again.
    worker.unref();
    return slot;
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (!slot.ready || slot.current !== undefined) continue;
      const next = this.queue.shift();
      if (next === undefined) return;
      slot.current = next;
      slot.worker.ref();
      // The block is in shared memory (parallel-blocks.ts): the worker reads it where it is, and
      // the caller still has it, to compress it itself if the pool breaks.
      slot.worker.postMessage(next.job);
    }
  }

  private answer(slot: Slot, reply: Exclude<WorkerMessage, { ready: true }>): void {
    const done = slot.current;
    slot.current = undefined;
    slot.worker.unref();
    if (done !== undefined) {
      if ("output" in reply) done.resolve(Buffer.from(reply.output.buffer, reply.output.byteOffset, reply.output.byteLength));
      else done.reject(new IoError(`${done.job.format} compression of a layer block failed: ${reply.error}`));
    }
    this.dispatch();
  }

  private fail(cause: unknown): void {
    if (this.closed) return;
    this.closed = true;
    this.rejectAll(new BlockPoolFailure({ cause }));
    for (const slot of this.slots) void slot.worker.terminate();
  }

  private rejectAll(err: unknown): void {
    for (const slot of this.slots) {
      slot.current?.reject(err);
      slot.current = undefined;
    }
    for (const queued of this.queue.splice(0)) queued.reject(err);
  }
}
