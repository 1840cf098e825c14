import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { sha256 } from "../../src/model/digest.js";
import { GantryError } from "../../src/model/errors.js";
import type { Compression } from "../../src/model/mediatypes.js";
import { makeLayer } from "../../src/image/layer.js";
import { REPO_ROOT } from "../helpers/paths.js";
import { have } from "../helpers/tools.js";

/**
 * A layer's stored bytes, as writers copy them (`open`), are checked on the way: digest,
 * decompression, tar shape and diff_id, in one read. The tars are GNU tar's, compressed by
 * the gzip tool.
 */

const skip = have("tar") && have("gzip") ? false : "GNU tar and gzip are needed";

/** GNU tar of a file of this repository. */
function gnuTar(): Buffer {
  return execFileSync("tar", ["-c", "-C", REPO_ROOT, "--owner=0", "--group=0", "--mtime=@0", "package.json"], { maxBuffer: 1 << 24 });
}

let layers = 0;

/** A layer over `stored`, claiming `diffId` (and, unless given, the digest of `stored`). */
function layerOf(stored: Buffer, compression: Compression, diffId: string, digest = sha256(stored)) {
  // Each its own diff_id or digest string, so no layer is taken as checked by an earlier one.
  return makeLayer({
    digest, diffId: diffId as `sha256:${string}`, size: stored.length, compression,
    describe: `test layer ${++layers}`, openRaw: async () => Readable.from([stored.subarray(0, 100), stored.subarray(100)]),
  });
}

function code(expected: string, mention?: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof GantryError, String(err));
    assert.equal(err.code, expected, err.message);
    if (mention) assert.match(err.message, mention);
    return true;
  };
}

test("a sound layer's bytes pass through open() unchanged", { skip }, async () => {
  const tar = gnuTar();
  const gz = execFileSync("gzip", ["-n", "-c"], { input: tar });
  assert.deepEqual(await buffer(await layerOf(gz, "gzip", sha256(tar)).open()), gz);
  assert.deepEqual(await buffer(await layerOf(tar, "none", sha256(tar)).open()), tar);
});

test("bytes true to their digest but no layer fail open(), naming the layer", { skip }, async () => {
  const tar = gnuTar();
  const fake = Buffer.from("this is not a tar, it is 33 bytes");
  await assert.rejects(async () => buffer(await layerOf(fake, "none", sha256(fake)).open()), code("FORMAT_INVALID", /test layer \d+ is not a whole tar/));
  const ofNoTar = execFileSync("gzip", ["-n", "-c"], { input: Buffer.alloc(4096, "x") });
  await assert.rejects(async () => buffer(await layerOf(ofNoTar, "gzip", sha256(Buffer.alloc(4096, "x"))).open()), code("FORMAT_INVALID", /is not a tar archive/));
  const gz = execFileSync("gzip", ["-n", "-c"], { input: tar });
  await assert.rejects(async () => buffer(await layerOf(gz, "gzip", sha256(Buffer.concat([tar, tar]))).open()), code("DIGEST_MISMATCH", /\(uncompressed\) does not match/));
  const junk = Buffer.concat([gz, Buffer.alloc(10)]);
  await assert.rejects(async () => buffer(await layerOf(junk, "gzip", sha256(tar)).open()), code("FORMAT_INVALID", /cannot be decompressed as gzip/));
});

test("bytes that are not the blob named are a digest mismatch, whatever they decompress to", { skip }, async () => {
  const tar = gnuTar();
  const gz = execFileSync("gzip", ["-n", "-c"], { input: tar });
  const damaged = Buffer.from(gz);
  damaged[damaged.length - 1]! ^= 0xff; // the gzip length: decompression fails before the digest is known
  await assert.rejects(async () => buffer(await layerOf(damaged, "gzip", sha256(tar), sha256(gz)).open()), code("DIGEST_MISMATCH"));
});
