import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { compressor, decompressor } from "../../src/compression/compression.js";
import { FRAME_SIZE } from "../../src/compression/zstd-block.js";
import { tmpDir } from "../helpers/tmp.js";
import { have } from "../helpers/tools.js";

/**
 * zstd as independent 4 MiB frames compressed on worker threads: the bytes must not depend
 * on how many there are, none included (the output of a layer is part of its digest, and
 * machines differ in cores), and what comes out must be ordinary zstd that the zstd tool
 * reads as one stream.
 */

async function through(input: Buffer, stream: NodeJS.ReadWriteStream, chunk = 1 << 20): Promise<Buffer> {
  const parts: Buffer[] = [];
  const pieces = function* (): Generator<Buffer> { for (let i = 0; i < input.length; i += chunk) yield input.subarray(i, i + chunk); };
  for await (const c of Readable.from(pieces()).pipe(stream)) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** 24 MiB: zstd hands a worker a job every few MiB at level 3, so several are in flight. */
function input(): Buffer {
  const text = Buffer.from("gantry layers are deterministic ".repeat(64 * 1024));
  return Buffer.concat([randomBytes(4 * 1024 * 1024), text, randomBytes(8 * 1024 * 1024), text, text, text]);
}

test("zstd writes the same bytes with 1, 2 and 4 worker threads, whatever the write sizes", async () => {
  const data = input();
  const reference = await through(data, compressor("zstd", 3, 1));
  assert.deepEqual(await through(data, compressor("zstd", 3, 0), 5 << 20), reference, "the calling thread alone, 5 MiB writes");
  assert.deepEqual(await through(data, compressor("zstd", 3, 2), 7777), reference, "2 workers, odd writes");
  assert.deepEqual(await through(data, compressor("zstd", 3, 4), 3 << 20), reference, "4 workers, 3 MiB writes");
  assert.deepEqual(await through(data, compressor("zstd", 3)), reference, "the default count");
  assert.notDeepEqual(await through(data, compressor("zstd", 5, 2)), reference, "the level does change the bytes");
  assert.deepEqual(await through(reference, decompressor("zstd")), data);
});

test("the zstd tool reads what the workers wrote", { skip: have("zstd") ? false : "zstd is not installed" }, async () => {
  const data = input();
  const packed = await through(data, compressor("zstd", 3, 2));
  assert.deepEqual(execFileSync("zstd", ["-d", "-c"], { input: packed, maxBuffer: 64 * 1024 * 1024 }), data);
});

test("the stream is one frame per 4 MiB of input, the last one partial or empty, each with its content size", { skip: have("zstd") ? false : "zstd is not installed" }, async (t) => {
  const dir = await tmpDir(t);
  const cases: Array<[bytes: number, frames: number]> = [[0, 1], [FRAME_SIZE - 1, 1], [FRAME_SIZE, 2], [2 * FRAME_SIZE + 5, 3]];
  for (const [bytes, frames] of cases) {
    const data = Buffer.alloc(bytes, "gantry ");
    const file = join(dir, `${bytes}.zst`);
    await writeFile(file, await through(data, compressor("zstd", 3, 2)));
    const listing = execFileSync("zstd", ["-lv", file], { encoding: "utf8" });
    assert.match(listing, new RegExp(`# Zstandard Frames: ${frames}\\n`), `${bytes} bytes`);
    // zstd -l knows the decompressed size only when every frame records its own.
    assert.match(listing, new RegExp(`Decompressed Size: .*\\(${bytes} B\\)`), `${bytes} bytes`);
    assert.deepEqual(execFileSync("zstd", ["-d", "-c", file], { maxBuffer: 64 * 1024 * 1024 }), data);
  }
});
