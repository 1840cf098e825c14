import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { constants, crc32, createGzip, deflateRawSync, gunzipSync } from "node:zlib";
import { DEFAULT_GZIP_LEVEL, compressor, decompressor, sniffCompression } from "../../src/compression/compression.js";
import { BLOCK_SIZE, crc32ByTable } from "../../src/compression/gzip-block.js";
import { createParallelGzip, type ParallelGzipOptions } from "../../src/compression/parallel-gzip.js";
import { peerTest, requireTools, run } from "../helpers/tools.js";

/**
 * The block-parallel gzip writer: it must round-trip every size around the block
 * boundaries, write the same bytes whatever the thread count and the input chunking,
 * and be read by every gzip decoder (zlib, GNU gzip, pigz, Python).
 */

/** Text-like data (words from a small vocabulary, seeded), compressible like source files. */
function compressible(size: number, seed = 1): Buffer {
  const words = ["layer", "image", "manifest", "config", "digest", "blob", "tar", "gzip", "\n", "{", "}", "0755", "usr/lib/"];
  const out = Buffer.alloc(size);
  let state = seed;
  let offset = 0;
  while (offset < size) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    const word = words[state % words.length] ?? "";
    offset += out.write(`${word} `, offset);
  }
  return out;
}

/** Compresses `input`, written in pieces of `chunk` bytes (all at once by default). */
async function gzipOf(input: Buffer, options: Partial<ParallelGzipOptions> = {}, chunk = input.length || 1): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let offset = 0; offset < input.length; offset += chunk) pieces.push(input.subarray(offset, offset + chunk));
  return buffer(Readable.from(pieces).pipe(createParallelGzip({ level: 6, ...options })));
}

const SIZES = [0, 1, BLOCK_SIZE - 1, BLOCK_SIZE, BLOCK_SIZE + 1, 5 * BLOCK_SIZE + 12345];

test("round trip through gunzip at every size around the block boundary, random and compressible", async () => {
  for (const size of SIZES) {
    for (const [kind, input] of [["random", randomBytes(size)], ["compressible", compressible(size)]] as const) {
      const gz = await gzipOf(input, { threads: 2, parallelAfter: 0 });
      assert.ok(gunzipSync(gz).equals(input), `${kind} ${size} bytes`);
      // One gzip member, trailer over the whole input: the crc and length zlib checks.
      assert.equal(gz.readUInt32LE(gz.length - 8), crc32(input), `${kind} ${size} bytes: crc32`);
      assert.equal(gz.readUInt32LE(gz.length - 4), size, `${kind} ${size} bytes: length`);
    }
  }
});

test("the same bytes with 0 (calling thread), 1 and 3 worker threads, any chunking, with and without the threshold", async () => {
  const input = Buffer.concat([compressible(3 * BLOCK_SIZE + 777), randomBytes(BLOCK_SIZE + 5), compressible(BLOCK_SIZE, 7)]);
  const reference = await gzipOf(input, { threads: 0 });
  const variants: Array<[string, Partial<ParallelGzipOptions>, number]> = [
    ["1 thread", { threads: 1, parallelAfter: 0 }, input.length],
    ["3 threads", { threads: 3, parallelAfter: 0 }, input.length],
    ["3 threads, 7777-byte writes", { threads: 3, parallelAfter: 0 }, 7777],
    ["2 threads after the default threshold, 64 KiB writes", { threads: 2 }, 64 * 1024],
    ["calling thread, 1-MiB-and-a-bit writes", { threads: 0 }, BLOCK_SIZE * 2 + 3],
  ];
  for (const [name, options, chunk] of variants) {
    const gz = await gzipOf(input, options, chunk);
    assert.equal(gz.length, reference.length, name);
    assert.ok(gz.equals(reference), name);
  }
  assert.ok(gunzipSync(reference).equals(input));
});

test("an input shorter than one block compresses to exactly what Node's createGzip writes", async () => {
  for (const size of [0, 1, 1000, BLOCK_SIZE - 1]) {
    for (const level of [1, 6, 9]) {
      const input = compressible(size, size + level);
      const ours = await gzipOf(input, { level, threads: 2, parallelAfter: 0 });
      const node = await buffer(Readable.from([input]).pipe(createGzip({ level })));
      assert.ok(ours.equals(node), `${size} bytes at level ${level}`);
    }
  }
});

test("blocks are cut every BLOCK_SIZE bytes, each deflated alone and sync-flushed", async () => {
  // Built by hand from zlib's raw deflate, independently of the writer: if the block size
  // or the way a block is deflated changed, every gzip layer digest would change with it.
  const input = compressible(2 * BLOCK_SIZE + 100, 3);
  const blocks = [0, BLOCK_SIZE, 2 * BLOCK_SIZE].map((start, i) => deflateRawSync(input.subarray(start, start + BLOCK_SIZE), {
    level: 6,
    chunkSize: 2 * BLOCK_SIZE,
    finishFlush: i === 2 ? constants.Z_FINISH : constants.Z_SYNC_FLUSH,
  }));
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc32(input), 0);
  trailer.writeUInt32LE(input.length, 4);
  const expected = Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]), ...blocks, trailer]);
  assert.ok((await gzipOf(input, { threads: 2, parallelAfter: 0 })).equals(expected));
});

test("compressor('gzip') writes this format, at the level asked for, and decompressor reads it back", async () => {
  const input = Buffer.concat([compressible(2 * BLOCK_SIZE), randomBytes(1000)]);
  for (const level of [undefined, 1, 9]) {
    const gz = await buffer(Readable.from([input]).pipe(compressor("gzip", level)));
    assert.ok(gz.equals(await gzipOf(input, { level: level ?? DEFAULT_GZIP_LEVEL })), `level ${level}`);
    assert.equal(sniffCompression(gz), "gzip");
    assert.ok((await buffer(Readable.from([gz]).pipe(decompressor("gzip")))).equals(input));
  }
});

test("the table crc32 (for Node before 20.15) agrees with zlib's, chained over pieces", () => {
  const data = randomBytes(100_000);
  assert.equal(crc32ByTable(data, 0), crc32(data));
  assert.equal(crc32ByTable(data.subarray(777), crc32ByTable(data.subarray(0, 777), 0)), crc32(data));
  assert.equal(crc32ByTable(Buffer.from("123456789"), 0), 0xcbf43926);
});

test("a level or thread count out of range is refused with a GantryError naming it", () => {
  assert.throws(() => createParallelGzip({ level: 10 }), { code: "UNSUPPORTED", message: /gzip level 10/ });
  assert.throws(() => createParallelGzip({ level: 6, threads: 1.5 }), { code: "UNSUPPORTED", message: /thread count 1\.5/ });
});

function sha256Hex(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

peerTest("GNU gzip, pigz and Python's gzip module decode it; the size is within 2% of gzip -6", async () => {
  requireTools("gzip", "pigz", "python3");
  const input = Buffer.concat([compressible(6 * BLOCK_SIZE + 99, 5), randomBytes(BLOCK_SIZE / 2), compressible(BLOCK_SIZE, 9)]);
  const gz = await gzipOf(input, { threads: 2, parallelAfter: 0 }, 65536);
  const python = "import gzip, sys; sys.stdout.buffer.write(gzip.decompress(sys.stdin.buffer.read()))";
  for (const [tool, args] of [["gzip", ["-dc"]], ["pigz", ["-dc"]], ["python3", ["-c", python]]] as const) {
    const { stdout } = await run(tool, args, { input: gz });
    assert.equal(sha256Hex(stdout), sha256Hex(input), tool);
  }
  // `gzip -t` also checks the trailer's crc and length against what it decoded.
  await run("gzip", ["-t"], { input: gz });
  const reference = (await run("gzip", ["-6", "-c"], { input })).stdout;
  const ratio = gz.length / reference.length;
  assert.ok(ratio < 1.02, `${gz.length} bytes is ${ratio.toFixed(4)}× gzip -6's ${reference.length}`);
});
