import { parentPort } from "node:worker_threads";
import { hashFileSync } from "../layer/hash-file.js";
import { READ_CHUNK } from "../util/io.js";

/**
 * A hashing worker of the hash pool (hash-pool.ts): receives lists of host files, answers
 * each with the sha256 of every file (or the first error, naming the file), in order.
 */

/** The host files a worker is to hash; the HashReply gives their digests in this order. */
export type HashJob = { paths: string[] };
/** A worker's answer to one HashJob: every file's digest, in order, or the first failure (its message names the file). */
export type HashReply = { digests: string[] } | { error: string; path: string };

const port = parentPort;
if (port !== null) {
  const chunk = Buffer.allocUnsafe(READ_CHUNK);
  port.on("message", (job: HashJob) => {
    const digests: string[] = [];
    for (const path of job.paths) {
      try {
        digests.push(hashFileSync(path, chunk));
      } catch (err) {
        port.postMessage({ error: err instanceof Error ? err.message : String(err), path } satisfies HashReply);
        return;
      }
    }
    port.postMessage({ digests } satisfies HashReply);
  });
}
