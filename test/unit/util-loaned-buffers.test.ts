/**
 * Lent buffers (src/util/loaned-buffers.ts) and the file writer that gives them back
 * (givingBackFileWriter, src/util/io.ts): a lent chunk is freed (detached) once written and
 * not before, its bytes reach the file whole, and a buffer that was not lent, or that shares
 * Buffer's pool, is never touched.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { setImmediate as nextTurn } from "node:timers/promises";
import { giveBack, lend } from "../../src/util/loaned-buffers.js";
import { givingBackFileWriter } from "../../src/util/io.js";

/** A Buffer that owns its own ArrayBuffer, filled with `byte`. */
function owned(size: number, byte: number): Buffer {
  return Buffer.alloc(size, byte);
}

/**
 * Waits until giving back works: the first loan starts closing the dropping port's other
 * end, which takes a few turns of the event loop (until then a loan is left to the GC).
 */
async function loansWork(): Promise<void> {
  for (let turn = 0; turn < 1000; turn++) {
    const probe = lend(owned(64 * 1024, 0));
    await nextTurn();
    giveBack(probe);
    if (probe.byteLength === 0) return;
  }
  assert.fail("lent buffers were never given back");
}

test("a lent buffer given back is freed; one not lent, or too small to lend, is left whole", async () => {
  const lentOne = lend(owned(256 * 1024, 1));
  const notLent = owned(256 * 1024, 2);
  const pooled = Buffer.from("from Buffer's shared pool");
  const neighbour = Buffer.from("another slice of the same pool");
  assert.equal(pooled.buffer, neighbour.buffer, "the two small buffers share a pool slab");
  lend(pooled);
  await loansWork();
  giveBack(lentOne);
  giveBack(notLent);
  giveBack(pooled);
  assert.equal(lentOne.byteLength, 0, "the lent buffer is detached");
  assert.equal(lentOne.buffer.byteLength, 0);
  assert.equal(notLent.byteLength, 256 * 1024);
  assert.ok(notLent.every((b) => b === 2));
  assert.equal(pooled.toString(), "from Buffer's shared pool");
  assert.equal(neighbour.toString(), "another slice of the same pool");
  giveBack(lentOne); // twice is harmless
});

test("givingBackFileWriter writes every byte, then frees the lent chunks and only those", async () => {
  const dir = await mkdtemp(join(tmpdir(), "gantry-loans-"));
  try {
    await loansWork();
    const chunks = [lend(owned(300 * 1024, 7)), owned(100 * 1024, 8), lend(owned(5 * 1024 * 1024, 9)), lend(owned(70 * 1024, 10))];
    const expected = Buffer.concat(chunks);
    const seenWhole: boolean[] = [];
    // A stage between producer and writer, as the digest stream of a layer's pipeline is: it
    // must see every chunk whole (not yet given back).
    const between = new Transform({
      transform(chunk: Buffer, _enc, cb) { seenWhole.push(chunk.byteLength > 0); cb(null, chunk); },
    });
    const path = join(dir, "blob");
    await pipeline(Readable.from(chunks, { objectMode: false }), between, givingBackFileWriter(path));
    assert.deepEqual(await readFile(path), expected);
    assert.deepEqual(seenWhole, [true, true, true, true]);
    assert.deepEqual(chunks.map((c) => c.byteLength), [0, 100 * 1024, 0, 0], "lent chunks are freed, the other is not");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
