import { availableParallelism } from "node:os";
import { wallClockNs } from "./stat-index.js";
import { Worker } from "node:worker_threads";
import type { Digest } from "../model/digest.js";
import { SourceUnreadableError, throwIfAborted } from "../model/errors.js";
import { hashFileSync } from "../layer/hash-file.js";
import { READ_CHUNK } from "../util/io.js";
import type { HashJob, HashReply } from "./hash-worker.js";
import { workerScript } from "../util/worker-script.js";

/**
 * The sha256 of many host files: a fresh checkout's first build hashes every source file
 * (stat-index.ts), hundreds of megabytes that one thread reads and hashes at about 1 GB/s.
 *
 * A HashQueue takes files as they are found (the source walk adds them while it goes on:
 * content-key.ts), and once HASH_IN_WORKERS_BYTES or HASH_IN_WORKERS_FILES are queued it
 * starts one worker per core and sends them batches of about BATCH_BYTES as they fill, so
 * the hashing overlaps the walk. Below that, starting workers (~70 ms) costs more than it saves: finish() hashes
 * the files on the calling thread. Workers are unref'd until finish() awaits them: a queue
 * left unfinished after a failed walk never keeps the process alive.
 */

const HASH_IN_WORKERS_BYTES = 64 * 1024 * 1024;
/**
 * Or this many files, however small: opening, reading and closing one costs about 20 µs
 * before any hashing, so 100,000 small files took 2 s on the calling thread after the walk.
 */
const HASH_IN_WORKERS_FILES = 5000;
const BATCH_BYTES = 8 * 1024 * 1024;
const BATCH_FILES = 2000;

// Spelled from the cache folder so that it resolves the same from the CLI bundle (dist/src/cli).
const WORKER_URL = workerScript(new URL("../cache/hash-worker.js", import.meta.url));

/** A host file to hash; `size`, in bytes, decides when workers start and how batches fill. */
export interface FileToHash {
  path: string;
  size: number;
}

/** One hashing thread; it answers batches in the order they were sent. */
class HashWorker {
  private readonly worker = new Worker(WORKER_URL, { execArgv: [] });
  private readonly waiting: Array<{ resolve: (r: HashReply) => void; reject: (e: unknown) => void }> = [];

  constructor() {
    this.worker.unref();
    this.worker.on("message", (reply: HashReply) => this.waiting.shift()?.resolve(reply));
    const failAll = (err: unknown): void => {
      for (const w of this.waiting.splice(0)) w.reject(err);
    };
    this.worker.on("error", failAll);
    this.worker.on("exit", (code) => failAll(new Error(`a hashing worker exited with code ${code}`)));
  }

  hash(paths: string[]): Promise<HashReply> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.worker.postMessage({ paths } satisfies HashJob);
    });
  }

  /** Keeps the process alive while its answers are awaited (an unref'd thread would not). */
  ref(): void {
    this.worker.ref();
  }

  stop(): Promise<number> {
    return this.worker.terminate();
  }
}

/**
 * Hashes host files as they are queued, on `threads` workers (by default one per core, 8 at most)
 * once enough bytes wait. finish() throws SourceUnreadableError naming a file that cannot be read.
 */
export class HashQueue {
  private readonly seen = new Set<string>();
  private batch: FileToHash[] = [];
  private batchBytes = 0;
  private queuedBytes = 0;
  /** Files not sent to a worker (all of them until workers start). */
  private readonly local: FileToHash[] = [];
  private workers: HashWorker[] | undefined;
  private turn = 0;
  private readonly sent: Array<Promise<{ files: FileToHash[]; reply: HashReply | undefined }>> = [];
  /** When the first file was queued: what a stat index records as the hashing time. */
  readonly startedAtNs = wallClockNs();

  constructor(private readonly threads = Math.min(availableParallelism(), 8)) {}

  /** Queues a host file (each path once). */
  add(file: FileToHash): void {
    if (this.seen.has(file.path)) return;
    this.seen.add(file.path);
    this.queuedBytes += file.size;
    if (this.workers === undefined) {
      this.local.push(file);
      const enough = this.queuedBytes >= HASH_IN_WORKERS_BYTES || this.local.length >= HASH_IN_WORKERS_FILES;
      if (enough && this.threads >= 2) this.startWorkers();
      return;
    }
    this.batch.push(file);
    this.batchBytes += file.size;
    if (this.batchBytes >= BATCH_BYTES || this.batch.length >= BATCH_FILES) this.send();
  }

  private startWorkers(): void {
    try {
      this.workers = Array.from({ length: this.threads }, () => new HashWorker());
    } catch {
      return; // no workers here: finish() hashes on this thread
    }
    for (const f of this.local.splice(0)) {
      this.batch.push(f);
      this.batchBytes += f.size;
      if (this.batchBytes >= BATCH_BYTES || this.batch.length >= BATCH_FILES) this.send();
    }
  }

  private send(): void {
    const files = this.batch;
    this.batch = [];
    this.batchBytes = 0;
    if (files.length === 0) return;
    const worker = this.workers![this.turn++ % this.workers!.length]!;
    // A worker that fails leaves its files to finish(), which hashes them here.
    this.sent.push(worker.hash(files.map((f) => f.path)).then((reply) => ({ files, reply }), () => ({ files, reply: undefined })));
  }

  /** Every queued file's digest, by path, added to `out`; the workers are stopped. */
  async finish(signal?: AbortSignal, out = new Map<string, Digest>()): Promise<Map<string, Digest>> {
    try {
      this.send();
      for (const w of this.workers ?? []) w.ref();
      for (const done of await Promise.all(this.sent)) {
        const { files, reply } = done;
        // The worker's error already names the file (layer/source-error.ts).
        if (reply !== undefined && "error" in reply) throw new SourceUnreadableError(reply.error);
        if (reply === undefined) this.local.push(...files);
        else reply.digests.forEach((d, i) => out.set(files[i]!.path, d as Digest));
      }
      throwIfAborted(signal);
      const here = await hashHere(this.local, signal);
      this.local.forEach((f, i) => out.set(f.path, here[i]!));
      return out;
    } finally {
      // A finished queue may be held to the end of a build; its list of every path it saw need not be.
      this.seen.clear();
      this.local.length = 0;
      this.sent.length = 0;
      await Promise.all((this.workers ?? []).map((w) => w.stop()));
    }
  }
}

async function hashHere(files: readonly FileToHash[], signal: AbortSignal | undefined): Promise<Digest[]> {
  const chunk = Buffer.allocUnsafe(READ_CHUNK);
  const out: Digest[] = [];
  let sinceYield = 0;
  for (const f of files) {
    out.push(hashFileSync(f.path, chunk));
    sinceYield += f.size;
    // Now and then, let the event loop (and an abort) through.
    if (sinceYield >= BATCH_BYTES) {
      sinceYield = 0;
      await new Promise((resolve) => setImmediate(resolve));
      throwIfAborted(signal);
    }
  }
  return out;
}
