/**
 * The floor under any gzip build made with node's zlib: a file deflated in gantry's blocks on
 * every core, and nothing else (no tar, no digest, no crc, no output written). build.ts times
 * it beside gantry and the peers, so a ratio that no gantry build could reach shows as such.
 *
 *   node dist/bench/deflate-floor.js FILE LEVEL [THREADS]
 *
 * Each thread reads its own blocks (every THREADS-th) with pread and deflates each alone; the
 * compressed bytes are counted and dropped.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { availableParallelism } from "node:os";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import { deflateRawSync } from "node:zlib";
import { BLOCK_SIZE } from "../src/compression/gzip-block.js";

interface Share { file: string; level: number; index: number; threads: number }

/** Deflates blocks index, index + threads, ... of the file: the bytes they came to. */
function deflateShare({ file, level, index, threads }: Share): number {
  const fd = openSync(file, "r");
  try {
    const size = fstatSync(fd).size;
    const block = Buffer.allocUnsafe(BLOCK_SIZE);
    let out = 0;
    for (let at = index * BLOCK_SIZE; at < size; at += threads * BLOCK_SIZE) {
      const got = readSync(fd, block, 0, BLOCK_SIZE, at);
      out += deflateRawSync(block.subarray(0, got), { level }).length;
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

if (isMainThread) {
  const [file, level, threadArg] = process.argv.slice(2);
  if (file === undefined || level === undefined) throw new Error("usage: deflate-floor.js FILE LEVEL [THREADS]");
  const threads = Number(threadArg ?? availableParallelism());
  const shares = Array.from({ length: threads }, (_, index) => new Promise<number>((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: { file, level: Number(level), index, threads } satisfies Share });
    worker.once("message", resolve);
    worker.once("error", reject);
  }));
  const bytes = (await Promise.all(shares)).reduce((a, b) => a + b, 0);
  console.log(bytes);
} else {
  parentPort!.postMessage(deflateShare(workerData as Share));
}
