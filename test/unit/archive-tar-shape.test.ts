import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { TarShape } from "../../src/tar/shape.js";
import { GantryError } from "../../src/model/errors.js";
import { tmpDir } from "../helpers/tmp.js";
import { have } from "../helpers/tools.js";

/**
 * The tar shape check a copied layer goes through: what GNU tar writes in each of its
 * formats passes, whatever the chunking; what Go's archive/tar (docker, containerd) would
 * stop on fails, at the right place.
 */

const skip = have("tar") ? false : "GNU tar is needed";

/** Feeds `bytes` to a TarShape in pieces of `chunk`; returns the error, if any. */
function shapeOf(bytes: Buffer, chunk: number): GantryError | undefined {
  const shape = new TarShape("the test tar");
  try {
    for (let i = 0; i < bytes.length; i += chunk) shape.feed(bytes.subarray(i, i + chunk));
    shape.end();
    return undefined;
  } catch (err) {
    assert.ok(err instanceof GantryError, String(err));
    return err;
  }
}

async function gnuTars(dir: string): Promise<Record<string, Buffer>> {
  const src = join(dir, "src");
  const long = `${"d".repeat(70)}/${"e".repeat(70)}`;
  await mkdir(join(src, long), { recursive: true });
  await writeFile(join(src, long, `${"f".repeat(90)}.txt`), "a file under a long name\n");
  await writeFile(join(src, "big"), Buffer.alloc(70_000, "b"));
  await writeFile(join(src, "empty"), "");
  execFileSync("ln", ["-s", "big", join(src, "link")]);
  const out: Record<string, Buffer> = {};
  // GNU long names (`L` entries) and PAX records (`x` entries, atimes too).
  for (const format of ["gnu", "posix"]) {
    out[format] = execFileSync("tar", [`--format=${format}`, "-C", src, "-c", "."], { maxBuffer: 1 << 24 });
  }
  return out;
}

test("what GNU tar writes passes, in any chunking", { skip }, async (t) => {
  const tars = await gnuTars(await tmpDir(t));
  for (const [format, bytes] of Object.entries(tars)) {
    for (const chunk of [1, 7, 512, 1000, bytes.length]) assert.equal(shapeOf(bytes, chunk), undefined, `${format} in ${chunk}-byte pieces`);
  }
  assert.equal(shapeOf(Buffer.alloc(0), 1), undefined, "an empty stream is an empty layer");
});

test("a tar ends at a header, after the end blocks (whatever follows), or right after an entry's data", { skip }, async (t) => {
  const tar = (await gnuTars(await tmpDir(t)))["gnu"]!;
  assert.equal(shapeOf(tar.subarray(0, 512), 100), undefined, "a directory header, then the end");
  assert.equal(shapeOf(Buffer.concat([tar, Buffer.from("ignored after the end")]), 4096), undefined);
  // One file entry without its padding and with no end blocks, as umoci's insert writes.
  const file = execFileSync("tar", ["--format=ustar", "-C", "/", "-c", "etc/hostname"]);
  const size = parseInt(file.toString("latin1", 124, 136), 8);
  assert.equal(shapeOf(file.subarray(0, 512 + size), 3), undefined, "no padding, no end blocks");
});

test("a tar cut in a header, in an entry's data or in its padding fails, saying where", { skip }, async (t) => {
  const tar = (await gnuTars(await tmpDir(t)))["gnu"]!;
  const cases: [Buffer, RegExp][] = [
    [tar.subarray(0, 300), /ends inside a header at byte 300/],
    [Buffer.from("this is not a tar, it is 33 bytes"), /ends inside a header at byte 33/],
    [Buffer.concat([Buffer.alloc(512, 7), Buffer.alloc(1024)]), /is not a tar archive/],
    [Buffer.concat([Buffer.alloc(512), tar]), /damaged tar header at byte 512/],
  ];
  // "big" (70,000 bytes): cut inside its data, then inside its padding.
  const at = tar.indexOf("./big\0");
  assert.ok(at >= 0);
  cases.push([tar.subarray(0, at + 512 + 1000), new RegExp(`ends inside an entry's data at byte ${at + 1512}`)]);
  cases.push([tar.subarray(0, at + 512 + 70_000 + 3), /ends inside the padding after an entry/]);
  const flipped = Buffer.from(tar);
  flipped[at + 20]! ^= 1;
  cases.push([flipped, new RegExp(`damaged tar header at byte ${at}`)]);
  for (const [bytes, why] of cases) {
    for (const chunk of [1, 511, bytes.length]) {
      const err = shapeOf(bytes, chunk);
      assert.ok(err, `${why} in ${chunk}-byte pieces: accepted`);
      assert.equal(err.code, "FORMAT_INVALID");
      assert.match(err.message, why);
      assert.match(err.message, /^the test tar /);
    }
  }
});
