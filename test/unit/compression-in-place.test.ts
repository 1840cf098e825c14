/**
 * A layer's tar is written straight into the compressor's block (compressorInputSpace,
 * src/layer/block-sink.ts). Such writes must give the bytes ordinary writes give, however
 * they mix with ordinary ones and wherever they fall against the block boundaries.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Readable, type Transform } from "node:stream";
import { buffer } from "node:stream/consumers";
import { compressor, compressorInputSpace } from "../../src/compression/compression.js";
import { BLOCK_SIZE } from "../../src/compression/gzip-block.js";
import { FRAME_SIZE } from "../../src/compression/zstd-block.js";

/** Writes `pieces` into `stream`: each in place (filling its input space, possibly over several blocks) or, when `foreign`, as a chunk of its own. */
async function feed(stream: Transform, pieces: Array<{ bytes: Buffer; foreign: boolean }>): Promise<Buffer> {
  const out = buffer(stream);
  const write = (chunk: Buffer): Promise<void> => new Promise((resolve, reject) => stream.write(chunk, (err) => (err ? reject(err) : resolve())));
  const space = compressorInputSpace(stream);
  assert.ok(space !== undefined, "a compressing stream gives its input space");
  for (const { bytes, foreign } of pieces) {
    if (foreign) {
      await write(bytes);
      continue;
    }
    let offset = 0;
    while (offset < bytes.length) {
      const free = space();
      const n = bytes.copy(free, 0, offset);
      offset += n;
      await write(free.subarray(0, n));
    }
  }
  stream.end();
  return out;
}

for (const [kind, block] of [["gzip", BLOCK_SIZE], ["zstd", FRAME_SIZE]] as const) {
  test(`${kind}: input written in place, mixed with ordinary writes, gives the bytes of ordinary writes`, async () => {
    const data = Buffer.concat([randomBytes(block + 7), Buffer.alloc(2 * block + 3, "in place "), randomBytes(block / 2)]);
    const cuts = [0, 100, block - 1, block + 7, block + 7 + 1000, 2 * block, 3 * block + 10, data.length];
    const pieces = cuts.slice(1).map((end, i) => ({ bytes: data.subarray(cuts[i], end), foreign: i % 3 === 2 }));
    const reference = await buffer(Readable.from([data]).pipe(compressor(kind, undefined, 2)));
    assert.deepEqual(await feed(compressor(kind, undefined, 2), pieces), reference);
    assert.deepEqual(await feed(compressor(kind, undefined, 0), pieces.map((p) => ({ ...p, foreign: false }))), reference);
  });
}

test("a stream that passes chunks on (no compression) gives no input space: each chunk needs its own buffer", () => {
  assert.equal(compressorInputSpace(compressor("none")), undefined);
});
