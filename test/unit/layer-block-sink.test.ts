/**
 * The layer's tar goes to its compressor in blocks (src/layer/block-sink.ts); the writer
 * waits for each block to be taken. These tests hold it to settling that wait however the
 * compressor ends: an interrupted build must fail, never stop silently with nothing pending.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { PassThrough, Transform } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { BlockSink } from "../../src/layer/block-sink.js";

const BLOCK = 1024 * 1024;

/** How `wait` settled within `ms`, or "pending". */
async function settledWithin(wait: Promise<unknown>, ms: number): Promise<"resolved" | "rejected" | "pending"> {
  return Promise.race([wait.then(() => "resolved" as const, () => "rejected" as const), sleep(ms).then(() => "pending" as const)]);
}

test("a block taken by the compressor resolves the wait; each block is told to onBlock first", async () => {
  const out = new PassThrough({ readableHighWaterMark: 4 * BLOCK });
  const seen: number[] = [];
  const sink = new BlockSink(out, "fresh", (block) => seen.push(block.length));
  assert.equal(await settledWithin(sink.give(Buffer.alloc(BLOCK, 1)), 1000), "resolved");
  assert.deepEqual(seen, [BLOCK]);
});

test("a compressor torn down while its output waits to be read rejects the wait instead of leaving it pending", async () => {
  // Its output is never read: the write's callback is kept back until it would be.
  const out = new Transform({ readableHighWaterMark: 1, transform: (chunk: Buffer, _e, done) => done(null, chunk) });
  out.on("error", () => {}); // the pipeline's to report
  const sink = new BlockSink(out, "fresh", () => {});
  const wait = sink.give(Buffer.alloc(BLOCK, 2));
  assert.equal(await settledWithin(wait, 100), "pending", "held while the output waits");
  out.destroy(new Error("interrupted"));
  assert.equal(await settledWithin(wait, 1000), "rejected");
});

test("a block given to a compressor already destroyed rejects the wait", async () => {
  const out = new PassThrough();
  out.on("error", () => {});
  out.destroy();
  const sink = new BlockSink(out, "fresh", () => {});
  assert.equal(await settledWithin(sink.give(Buffer.alloc(BLOCK, 3)), 1000), "rejected");
});
