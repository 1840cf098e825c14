import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { Digest } from "../model/digest.js";
import { GantryError, SourceUnreadableError, throwIfAborted } from "../model/errors.js";
import { hashFileSync } from "../layer/hash-file.js";
import { READ_CHUNK } from "../util/io.js";
import type { HashJob, HashReply } from "./hash-worker.js";

/**
 * The sha256 of many host files at once: a fresh checkout's first build hashes every source
 * file (stat-index.ts), hundreds of megabytes that one thread reads and hashes at about
 * 1 GB/s. Above HASH_IN_WORKERS_BYTES the files are split into batches of about
 * BATCH_BYTES and hashed by one worker per core; below, starting workers (~70 ms) costs
 * more than it saves, and the calling thread hashes them.
 */

const HASH_IN_WORKERS_BYTES = 64 * 1024 * 1024;
const BATCH_BYTES = 8 * 1024 * 1024;
const BATCH_FILES = 2000;

// Spelled from the cache folder so that it resolves the same from the CLI bundle (dist/src/cli).
const WORKER_URL = new URL("../cache/hash-worker.js", import.meta.url);

export interface FileToHash {
  path: string;
  size: number;
}

export async function hashFiles(files: readonly FileToHash[], signal?: AbortSignal): Promise<Digest[]> {
  const total = files.reduce((sum, f) => sum + f.size, 0);
  const threads = Math.min(availableParallelism(), 8);
  if (total < HASH_IN_WORKERS_BYTES || threads < 2) return hashHere(files, signal);
  try {
    return await hashInWorkers(files, threads, signal);
  } catch (err) {
    if (err instanceof GantryError) throw err;
    // A worker that could not start or died: the same work, here.
    return hashHere(files, signal);
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

/** Consecutive runs of files of about BATCH_BYTES (or BATCH_FILES), as index ranges. */
function batches(files: readonly FileToHash[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < files.length; i++) {
    bytes += files[i]!.size;
    if (bytes >= BATCH_BYTES || i - start + 1 >= BATCH_FILES) {
      out.push([start, i + 1]);
      start = i + 1;
      bytes = 0;
    }
  }
  if (start < files.length) out.push([start, files.length]);
  return out;
}

async function hashInWorkers(files: readonly FileToHash[], threads: number, signal: AbortSignal | undefined): Promise<Digest[]> {
  const out = new Array<Digest>(files.length);
  const queue = batches(files);
  const workers = Array.from({ length: Math.min(threads, queue.length) }, () => new Worker(WORKER_URL, { execArgv: [] }));
  try {
    await Promise.all(workers.map(async (worker) => {
      for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
        throwIfAborted(signal);
        const [from, to] = next;
        const reply = await ask(worker, { paths: files.slice(from, to).map((f) => f.path) });
        // The worker's error already names the file (layer/source-error.ts).
        if ("error" in reply) throw new SourceUnreadableError(reply.error);
        reply.digests.forEach((d, i) => { out[from + i] = d as Digest; });
      }
    }));
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return out;
}

function ask(worker: Worker, job: HashJob): Promise<HashReply> {
  return new Promise((resolve, reject) => {
    const onMessage = (reply: HashReply): void => { cleanup(); resolve(reply); };
    const onError = (err: unknown): void => { cleanup(); reject(err); };
    const onExit = (code: number): void => { cleanup(); reject(new Error(`a hashing worker exited with code ${code}`)); };
    const cleanup = (): void => {
      worker.off("message", onMessage);
      worker.off("error", onError);
      worker.off("exit", onExit);
    };
    worker.on("message", onMessage);
    worker.on("error", onError);
    worker.on("exit", onExit);
    worker.postMessage(job);
  });
}
