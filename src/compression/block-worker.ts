import { parentPort } from "node:worker_threads";
import { compressBlock, type BlockJob } from "./block-job.js";

/**
 * A compression worker of a block pool (block-pool.ts): says `{ ready }` once loaded, then
 * receives one BlockJob at a time and answers `{ output }` or `{ error }`.
 */

/** What a compression worker posts: once ready, then one output (or error) for each BlockJob it was sent. */
export type WorkerMessage = { ready: true } | { output: Uint8Array } | { error: string };

const port = parentPort;
if (port !== null) {
  port.on("message", (job: BlockJob) => {
    let output: Buffer;
    try {
      output = compressBlock(job);
    } catch (err) {
      port.postMessage({ error: err instanceof Error ? err.message : String(err) } satisfies WorkerMessage);
      return;
    }
    // Posting a Buffer copies its whole ArrayBuffer; hand that buffer over instead when
    // the output owns it (it is larger than Buffer's shared pool slab).
    const owned = output.buffer.byteLength > Buffer.poolSize;
    port.postMessage({ output } satisfies WorkerMessage, owned ? [output.buffer as ArrayBuffer] : []);
  });
  port.postMessage({ ready: true } satisfies WorkerMessage);
}
