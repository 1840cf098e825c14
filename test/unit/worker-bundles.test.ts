/**
 * The gantry command's worker threads run bundles (NAME.cjs beside each worker's module,
 * made by tools/bundle-cli.mjs; src/util/worker-script.ts picks them). Each bundle must do
 * what its module does: a bundle that lost a module, misresolved zstd-napi from its new
 * place, or ran nothing at load would break only the command's big builds.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { sha256 } from "../../src/model/digest.js";
import { workerScript } from "../../src/util/worker-script.js";
import { compressBlock, type BlockJob } from "../../src/compression/block-job.js";
import { CONTROL_WORDS, SEGMENT_DIGEST_BYTES, hashSegments } from "../../src/cache/snapshot-segments.js";
import { REPO_ROOT } from "../helpers/paths.js";
import { tmpDir } from "../helpers/tmp.js";

const bundle = (relative: string): string => join(REPO_ROOT, "dist", "src", relative);

/** Starts the bundle, sends `message` and resolves with the first message it posts that `wanted` accepts. */
function answer(path: string, opts: { message: unknown; wanted?: (m: unknown) => boolean }): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(path);
    worker.on("error", reject);
    worker.on("exit", (code) => reject(new Error(`${path} exited (${code}) without answering`)));
    worker.on("message", (m: unknown) => {
      if (opts.wanted !== undefined && !opts.wanted(m)) return;
      resolve(m);
      void worker.terminate();
    });
    worker.postMessage(opts.message);
  });
}

test("the library's workers run their modules; the command's bundle was built to run the scripts", async () => {
  const module = new URL("file:///x/dist/src/cache/hash-worker.js");
  assert.equal(workerScript(module).href, module.href);
  // Left undefined in the bundle, the name would send the command's workers to the modules.
  const cli = await readFile(join(REPO_ROOT, "dist", "src", "cli", "gantry-cli.cjs"), "latin1");
  assert.ok(cli.includes("function workerScript("), "the bundle has workerScript");
  assert.ok(!cli.includes("GANTRY_BUNDLED_WORKERS"), "GANTRY_BUNDLED_WORKERS was not defined in the bundle");
});

test("hash-worker.cjs answers a job with the sha256 of each file", async (t) => {
  const dir = await tmpDir(t);
  const file = join(dir, "f");
  await writeFile(file, "bytes to hash\n");
  const reply = await answer(bundle("cache/hash-worker.cjs"), { message: { paths: [file, file] } });
  const digest = sha256(await readFile(file));
  assert.deepEqual(reply, { digests: [digest, digest] });
});

test("block-worker.cjs compresses gzip and zstd blocks into the bytes the calling thread makes", async () => {
  const input = Buffer.from("a block of a layer's tar, ".repeat(2000));
  const notReady = (m: unknown): boolean => (m as { ready?: boolean }).ready !== true;
  for (const job of [{ format: "gzip", input, last: true, level: 4 }, { format: "zstd", input, last: true, level: 3 }] satisfies BlockJob[]) {
    const reply = await answer(bundle("compression/block-worker.cjs"), { message: job, wanted: notReady }) as { output: Uint8Array };
    const expected = compressBlock(job);
    assert.ok(expected.length > 0 && expected.length < input.length / 10, `${job.format} compressed ${input.length} bytes to ${expected.length}`);
    assert.deepEqual(Buffer.from(reply.output), expected, job.format);
  }
});

test("snapshot-worker.cjs hashes the segments of a job as the calling thread does", async (t) => {
  const dir = await tmpDir(t);
  for (const name of ["a", "b", "c"]) await writeFile(join(dir, name), name);
  const paths = ["a", "b", "c"].map((name) => join(dir, name));
  const job = () => ({ paths, startedAtNs: 0n, control: new SharedArrayBuffer(CONTROL_WORDS * 4), digests: new SharedArrayBuffer(paths.length * SEGMENT_DIGEST_BYTES) });
  const here = job();
  hashSegments(here);
  const there = job();
  assert.equal(await answer(bundle("cache/snapshot-worker.cjs"), { message: there }), "done");
  assert.deepEqual(Buffer.from(there.digests), Buffer.from(here.digests));
  assert.ok(Buffer.from(there.digests).some((b) => b !== 0), "no segment was hashed");
});
