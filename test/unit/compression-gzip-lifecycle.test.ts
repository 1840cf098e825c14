import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { copyFile, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { BLOCK_SIZE } from "../../src/compression/gzip-block.js";
import { createParallelGzip } from "../../src/compression/parallel-gzip.js";
import { tmpDir } from "../helpers/tmp.js";
import { run } from "../helpers/tools.js";

/**
 * The gzip writer's life: bounded memory under a slow reader, workers gone after an
 * abort, a destroy, an upstream error or an abandoned stream (each checked by a child
 * process that must exit on its own), and the same bytes when workers cannot start.
 */

const MODULE = fileURLToPath(new URL("../../src/compression/parallel-gzip.js", import.meta.url));

/**
 * Runs an ES module script in a fresh node; it must exit by itself (no process.exit)
 * within 20 s. Its sources yield to the event loop between chunks, as files and sockets
 * do (a source that pushes synchronously forever would starve the timers of any pipeline).
 */
async function childScript(t: TestContext, body: string): Promise<string> {
  // The gzip workers are counted from their own lives (constructed, then 'exit'), not from
  // the process's OS threads, which V8 and libuv also start and stop as they please.
  const script = `import workerThreads from "node:worker_threads";
import { syncBuiltinESMExports } from "node:module";
import { randomBytes } from "node:crypto";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
let running = 0;
const RealWorker = workerThreads.Worker;
workerThreads.Worker = class extends RealWorker {
  constructor(...args) { super(...args); running++; this.once("exit", () => { running--; }); }
};
syncBuiltinESMExports();
const { createParallelGzip } = await import(${JSON.stringify(MODULE)});
const workers = () => running;
const block = ${BLOCK_SIZE};
${body}`;
  // A file, not `node -e`: an evaluated script's process may exit while workers still hold refs.
  const file = join(await tmpDir(t), "child.mjs");
  await writeFile(file, script);
  const { stdout } = await run(process.execPath, [file], { timeoutMs: 20_000 });
  return stdout.toString("utf8").trim();
}

test("destroy while blocks are on the workers: the workers stop and the process exits", async (t) => {
  const out = await childScript(t, `
const gz = createParallelGzip({ level: 6, threads: 2, parallelAfter: 0 });
gz.on("data", () => {});
// 'close' comes after _destroy, which waits for the workers to terminate.
gz.on("close", () => console.log(workers() === 0 ? "closed, workers gone" : "closed, workers left"));
// A block every 20 ms: the first ones are deflated here while the workers load, later ones on the workers.
const feeding = setInterval(() => gz.write(randomBytes(block)), 20);
setTimeout(() => {
  console.log(workers() > 0 ? "workers were running" : "no workers");
  clearInterval(feeding);
  gz.destroy();
}, 400);`);
  assert.equal(out, "workers were running\nclosed, workers gone");
});

test("an AbortSignal mid-stream rejects the pipeline with AbortError and the process exits", async (t) => {
  const out = await childScript(t, `
const controller = new AbortController();
const endless = new Readable({ read() { setImmediate(() => this.push(randomBytes(64 * 1024))); } });
const sink = new Writable({ write(_chunk, _enc, cb) { cb(); } });
setTimeout(() => controller.abort(), 300);
await pipeline(endless, createParallelGzip({ level: 6, threads: 2, parallelAfter: 0 }), sink, { signal: controller.signal })
  .then(() => console.log("finished?"), (err) => console.log(err.name));`);
  assert.equal(out, "AbortError");
});

test("an upstream error reaches the pipeline's caller and the process exits", async (t) => {
  const out = await childScript(t, `
let sent = 0;
const failing = new Readable({ read() {
  setImmediate(() => {
    if (sent++ === 40) this.destroy(new Error("source broke"));
    else this.push(randomBytes(64 * 1024));
  });
} });
const sink = new Writable({ write(_chunk, _enc, cb) { cb(); } });
await pipeline(failing, createParallelGzip({ level: 6, threads: 2, parallelAfter: 0 }), sink)
  .then(() => console.log("finished?"), (err) => console.log(err.message));`);
  assert.equal(out, "source broke");
});

test("a stream left half-way (never ended nor destroyed) does not keep the process alive", async (t) => {
  const out = await childScript(t, `
const gz = createParallelGzip({ level: 6, threads: 2, parallelAfter: 0 });
gz.on("data", () => {});
// Long enough for the workers to load and take blocks, then nothing more, ever.
const feeding = setInterval(() => gz.write(randomBytes(block)), 20);
setTimeout(() => {
  clearInterval(feeding);
  console.log(workers() > 0 ? "abandoned with workers" : "abandoned, no workers");
}, 300);`);
  assert.equal(out, "abandoned with workers");
});

test("a reader that stops reading stops the writes: memory stays bounded by the window", async () => {
  const threads = 2;
  const gz = createParallelGzip({ level: 1, threads, parallelAfter: 0 });
  const chunk = randomBytes(256 * 1024);
  let accepted = 0;
  // Write like pipe() does, honouring write()'s false, and never read.
  const writer = (async () => {
    for (let i = 0; i < 200 && !gz.destroyed; i++) {
      const ok = gz.write(chunk, () => { accepted += chunk.length; });
      if (!ok) await new Promise<void>((resolve) => { gz.once("drain", resolve); gz.once("close", resolve); });
    }
  })();
  let last = -1;
  while (accepted !== last) {
    last = accepted;
    await new Promise((resolve) => setTimeout(resolve, 400));
  }
  // Window of 2 × threads blocks, plus one block being filled and the readable buffer
  // (random data does not shrink): far below the 50 MiB offered.
  const bound = (2 * threads + 4) * BLOCK_SIZE;
  assert.ok(accepted <= bound, `accepted ${accepted} bytes with nobody reading; bound ${bound}`);
  assert.ok(accepted > 0);
  gz.destroy();
  await writer;
});

test("when the workers cannot start, the calling thread deflates and the bytes are the same", async (t) => {
  // A copy of the modules without block-worker.js, as a bundle that left it behind would be.
  const dir = await tmpDir(t);
  const dist = fileURLToPath(new URL("../../src", import.meta.url));
  await mkdir(join(dir, "compression"), { recursive: true });
  await mkdir(join(dir, "model"), { recursive: true });
  await mkdir(join(dir, "util"), { recursive: true });
  await writeFile(join(dir, "package.json"), '{ "type": "module" }');
  for (const file of ["compression/parallel-gzip.js", "compression/parallel-blocks.js", "compression/block-job.js", "compression/gzip-block.js", "compression/zstd-block.js", "compression/zstd-module.js", "compression/block-pool.js", "model/errors.js", "util/loaned-buffers.js", "util/worker-script.js"]) {
    await copyFile(join(dist, file), join(dir, file));
  }
  const moved = (await import(join(dir, "compression/parallel-gzip.js"))) as { createParallelGzip: typeof createParallelGzip };
  const input = Buffer.concat([randomBytes(BLOCK_SIZE), Buffer.alloc(3 * BLOCK_SIZE + 11, "gantry ")]);
  const workerless = await buffer(Readable.from([input]).pipe(moved.createParallelGzip({ level: 6, threads: 2, parallelAfter: 0 })));
  const inThread = await buffer(Readable.from([input]).pipe(createParallelGzip({ level: 6, threads: 0 })));
  assert.ok(workerless.equals(inThread));
  assert.ok(gunzipSync(workerless).equals(input));
});

test("an expected length past the threshold starts the workers with the stream; one ended with no input lets the process exit", async (t) => {
  const out = await childScript(t, `
const small = createParallelGzip({ level: 6, threads: 2, expectedLength: block });
console.log("small:", workers());
small.destroy();
const big = createParallelGzip({ level: 6, threads: 2, expectedLength: 64 * block });
console.log("big:", workers());
const chunks = [];
big.on("data", (c) => chunks.push(c));
big.on("end", () => console.log("ended,", Buffer.concat(chunks).length > 0 ? "a gzip member" : "nothing"));
big.end();`);
  assert.equal(out, "small: 0\nbig: 2\nended, a gzip member");
});

test("with an expected length, the bytes are those of the calling thread alone", async () => {
  const input = Buffer.concat([randomBytes(BLOCK_SIZE), Buffer.alloc(5 * BLOCK_SIZE + 7, "gantry ")]);
  const told = await buffer(Readable.from([input]).pipe(createParallelGzip({ level: 6, threads: 2, expectedLength: input.length })));
  const inThread = await buffer(Readable.from([input]).pipe(createParallelGzip({ level: 6, threads: 0 })));
  assert.ok(told.equals(inThread));
  assert.ok(gunzipSync(told).equals(input));
});

test("blocks that deflate to little are handed on in memory of their own size, not in zlib's output buffer", async () => {
  // zlib hands back a view of its 515 KiB output buffer however little it wrote; a reader
  // that falls behind would hold one such buffer per waiting block.
  const input = Buffer.alloc(12 * BLOCK_SIZE + 11, "gantry layer ");
  for (const threads of [0, 2]) {
    const chunks: Buffer[] = [];
    const gz = Readable.from([input]).pipe(createParallelGzip({ level: 4, threads, parallelAfter: 0 }));
    for await (const chunk of gz) chunks.push(chunk as Buffer);
    assert.ok(gunzipSync(Buffer.concat(chunks)).equals(input));
    for (const chunk of chunks) {
      const held = chunk.buffer.byteLength;
      assert.ok(held <= Math.max(2 * chunk.length, Buffer.poolSize), `${threads} threads: a chunk of ${chunk.length} bytes holds ${held}`);
    }
  }
});
