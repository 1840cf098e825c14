/**
 * util/io.ts's removeWhenClosed and util/atomic.ts's writeStreamAtomically: a write stream
 * destroyed before its file is open still opens, and so creates, the file; a failed write
 * must leave nothing behind all the same (beside an output: no temporary file).
 * The stream here opens its file late (as a busy thread pool would), so removing the path
 * at once, without waiting for the stream, leaves the file there. And writeTextPieces: text
 * written through one reused buffer, byte for byte as UTF-8.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { createWriteStream } from "node:fs";
import { access, open, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { removeWhenClosed, writeTextPieces } from "../../src/util/io.js";
import { writeStreamAtomically } from "../../src/util/atomic.js";
import { tmpDir } from "../helpers/tmp.js";

/** A write stream to `path` whose open(2) is started only after `delayMs`. */
function lateOpening(path: string, delayMs: number): ReturnType<typeof createWriteStream> {
  const lateOpen = (...args: unknown[]): void => {
    setTimeout(() => (fs.open as (...a: unknown[]) => void)(...args), delayMs);
  };
  // Node's stream takes its file calls from `fs` as a whole: the rest are the real ones.
  const calls = { open: lateOpen, close: fs.close, write: fs.write, writev: fs.writev };
  return createWriteStream(path, { fs: calls } as Parameters<typeof createWriteStream>[1]);
}

const exists = (path: string): Promise<boolean> => access(path).then(() => true, () => false);

test("a write stream destroyed before its file opened: the file is removed once the stream has closed", async (t) => {
  const dir = await tmpDir(t);
  const path = join(dir, "blob.tmp");
  const stream = lateOpening(path, 40);
  stream.on("error", () => {});
  stream.destroy(new Error("the bytes failed their check"));
  await removeWhenClosed(stream, path);
  await sleep(80);
  assert.equal(await exists(path), false, "the late open created the file after it was removed");
});

test("a write stream never destroyed is destroyed, closed, and its file removed", async (t) => {
  const dir = await tmpDir(t);
  const path = join(dir, "blob.tmp");
  const stream = lateOpening(path, 20);
  await removeWhenClosed(stream, path);
  assert.equal(stream.closed, true);
  await sleep(60);
  assert.equal(await exists(path), false);
});

test("a stream already closed: the file is removed at once", async (t) => {
  const dir = await tmpDir(t);
  const path = join(dir, "blob.tmp");
  const stream = createWriteStream(path);
  stream.end("bytes");
  await new Promise<void>((resolve) => stream.on("close", () => resolve()));
  await removeWhenClosed(stream, path);
  assert.equal(await exists(path), false);
});

test("an output whose bytes fail before its temporary file opened: the output as it was, nothing beside it", async (t) => {
  const dir = await tmpDir(t);
  const dest = join(dir, "out.tar");
  await writeFile(dest, "the old archive");
  const failing = writeStreamAtomically(dest, async (out) => {
    out.destroy(new Error("a layer could not be read"));
    throw new Error("a layer could not be read");
  }, (path) => lateOpening(path, 40));
  await assert.rejects(failing, /a layer could not be read/);
  await sleep(80);
  assert.deepEqual(await readdir(dir), ["out.tar"]);
  assert.equal(await readFile(dest, "utf8"), "the old archive");
});

test("text pieces are written as UTF-8 from the position given, each piece's bytes seen as written, however long", async (t) => {
  const path = join(await tmpDir(t), "pieces");
  // A short piece first, then longer ones (the buffer must grow), multi-byte characters and a surrogate pair.
  const pieces = ["ab\n", "é".repeat(5000), "x".repeat(100_000), "\u{1F600} gantry ✓\n", ""];
  const seen: Buffer[] = [];
  const file = await open(path, "w");
  let end: number;
  try {
    end = await writeTextPieces(file.fd, pieces, 7, (bytes) => seen.push(Buffer.from(bytes)));
  } finally {
    await file.close();
  }
  const expected = Buffer.from(pieces.join(""), "utf8");
  const written = await readFile(path);
  assert.equal(end, 7 + expected.length);
  assert.ok(written.subarray(0, 7).equals(Buffer.alloc(7)), "nothing is written before the position");
  assert.ok(written.subarray(7).equals(expected));
  assert.ok(Buffer.concat(seen).equals(expected));
  assert.deepEqual(seen.map((b) => b.toString("utf8")), pieces);
});
