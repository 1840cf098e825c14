import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { decompressor } from "../../src/compression/compression.js";
import { expansionBound } from "../../src/compression/expansion.js";
import type { Compression } from "../../src/model/mediatypes.js";
import { have } from "../helpers/tools.js";

/**
 * The decompressors every layer goes through: strict as Go's readers (containerd, docker)
 * are, so a stream another tool would refuse is never copied on; bounded in memory however
 * far a stream expands; and refusing to expand past a bound. The streams are made by the
 * gzip and zstd command line tools, then damaged by hand.
 */

const needTools = have("gzip") && have("zstd") ? false : "gzip and zstd are needed";

/** `gzip -c` or `zstd -c` of `input`. */
function packed(kind: Exclude<Compression, "none">, input: Buffer, ...flags: string[]): Buffer {
  return execFileSync(kind, ["-c", "-q", ...flags], { input, maxBuffer: 256 * 1024 * 1024 });
}

/** What the decompressor makes of `bytes`, written in pieces of `chunk` bytes. */
async function inflate(kind: Compression, bytes: Buffer, chunk = 1000, bound?: ReturnType<typeof expansionBound>): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chunk) pieces.push(bytes.subarray(i, i + chunk));
  return buffer(Readable.from(pieces).pipe(decompressor(kind, bound)));
}

function withFlip(bytes: Buffer, fromEnd: number): Buffer {
  const out = Buffer.from(bytes);
  out[out.length - fromEnd]! ^= 0x01;
  return out;
}

const data = Buffer.concat([randomBytes(50_000), Buffer.alloc(100_000, "gantry ")]);

test("gzip and zstd streams other tools refuse are refused", { skip: needTools }, async () => {
  for (const kind of ["gzip", "zstd"] as const) {
    const good = packed(kind, data);
    assert.deepEqual(await inflate(kind, good), data, `${kind}: a sound stream`);
    assert.deepEqual(await inflate(kind, Buffer.concat([good, good])), Buffer.concat([data, data]), `${kind}: two members or frames`);
    const damaged: Record<string, Buffer> = {
      "cut before its end": good.subarray(0, good.length - 3),
      "cut in the middle": good.subarray(0, good.length >> 1),
      "followed by zero bytes": Buffer.concat([good, Buffer.alloc(512)]),
      "followed by junk": Buffer.concat([good, Buffer.from("junk after the stream")]),
      "followed by one byte": Buffer.concat([good, Buffer.from([0x1f])]),
    };
    if (kind === "gzip") {
      damaged["with a bad CRC"] = withFlip(good, 8);
      damaged["with a bad length"] = withFlip(good, 1);
    } else {
      damaged["with a bad checksum"] = withFlip(good, 1); // zstd -c writes a content checksum by default
    }
    for (const [what, bytes] of Object.entries(damaged)) {
      for (const chunk of [1000, bytes.length]) {
        await assert.rejects(inflate(kind, bytes, chunk), Error, `${kind} ${what}, written in ${chunk}-byte pieces`);
      }
    }
  }
});

test("a skippable zstd frame is passed over", { skip: needTools }, async () => {
  const skippable = Buffer.concat([Buffer.from([0x50, 0x2a, 0x4d, 0x18]), Buffer.from([4, 0, 0, 0]), Buffer.from("note")]);
  assert.deepEqual(await inflate("zstd", Buffer.concat([skippable, packed("zstd", data)])), data);
});

test("zstd output waits for its reader: a bomb written whole is held a block at a time", { skip: needTools }, async () => {
  // 256 MiB of zeros is 8 KB of zstd; the old stream turned each written chunk into all it held.
  const bomb = packed("zstd", Buffer.alloc(256 * 1024 * 1024), "-19");
  assert.ok(bomb.length < 64 * 1024, `${bomb.length} bytes`);
  const stream = decompressor("zstd");
  stream.write(bomb);
  stream.end();
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.ok(stream.readableLength <= 1024 * 1024, `${stream.readableLength} bytes held with nobody reading`);
  let total = 0;
  for await (const chunk of stream) total += (chunk as Buffer).length;
  assert.equal(total, 256 * 1024 * 1024, "and it all comes out when read");
});

test("a stream expanding past its bound is refused, naming what it is", { skip: needTools }, async () => {
  const zeros = Buffer.alloc(8 * 1024 * 1024);
  for (const kind of ["gzip", "zstd"] as const) {
    const bytes = packed(kind, zeros, "-9");
    const bound = expansionBound(bytes.length, `the test ${kind} layer`, 0);
    assert.ok(bound.maxBytes < zeros.length, `${kind}: ${bytes.length} stored bytes bound ${bound.maxBytes}`);
    await assert.rejects(inflate(kind, bytes, 1000, bound), /the test \w+ layer expands past \d+ bytes from \d+ stored .*decompression bomb/);
    // Within the bound (here the floor of 1 GiB), the same stream is read whole.
    assert.equal((await inflate(kind, bytes, 1000, expansionBound(bytes.length, "the same"))).length, zeros.length);
  }
});
