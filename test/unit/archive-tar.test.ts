import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { writeTarArchive, writeTarTo, type ArchiveEntry } from "../../src/archive/archive-tar.js";
import { listTar, tarMember } from "../helpers/archive.js";
import { tmpDir } from "../helpers/tmp.js";
import { isCode } from "./formats-fixtures.js";

/**
 * The image-archive writer decides names, order and modes and leaves the bytes to the
 * layer engine's tar writer. These pin what it decides (byte order with parents first, not
 * string or locale order) and that a blob's stream is held to its declared size.
 */

/** Member names as GNU tar reads them, raw bytes decoded as UTF-8 (no quoting of non-ASCII). */
function memberNames(tarPath: string): string[] {
  const out = execFileSync("tar", ["--quoting-style=literal", "-tf", tarPath], { env: { ...process.env, LC_ALL: "C" } });
  return out.toString("utf8").split("\n").filter((line) => line !== "");
}

const streamOf = (bytes: Buffer) => async (): Promise<Readable> => Readable.from([bytes]);

test("an archive lists every parent directory before its children, everything in byte order of its tar name", async (t) => {
  const dir = await tmpDir(t, "gantry-archive-");
  // U+FF5E is EF BD 9E in UTF-8, U+1F600 is F0 9F 98 80: byte order puts U+FF5E first,
  // while JavaScript's UTF-16 comparison (D83D DE00 < FF5E) puts the emoji first.
  const entries: ArchiveEntry[] = [
    { name: "z", bytes: Buffer.from("z") },
    { name: "\u{1F600}", bytes: Buffer.from("emoji") },
    { name: "a/b/c", size: 3, open: streamOf(Buffer.from("abc")), what: "the blob a/b/c" },
    { name: "\u{FF5E}/x", bytes: Buffer.from("wide") },
    { name: "a0", bytes: Buffer.from("zero") },
    { name: "a-x", bytes: Buffer.from("dash") },
    { name: "B", bytes: Buffer.alloc(0) },
  ];
  const tar = join(dir, "order.tar");
  const bytes = await writeTarTo(tar, entries, {});
  assert.equal(bytes, (await readFile(tar)).length);
  // "-" (0x2d) < "/" (0x2f) < "0" (0x30): the directory a/ sits between a-x and a0.
  assert.deepEqual(memberNames(tar), ["B", "a-x", "a/", "a/b/", "a/b/c", "a0", "z", "\u{FF5E}/", "\u{FF5E}/x", "\u{1F600}"]);
  for (const e of await listTar(tar)) {
    assert.deepEqual([e.mode, e.uid, e.gid, e.mtime], [e.type === "d" ? 0o755 : 0o644, 0, 0, 0], e.path);
  }
  assert.equal((await tarMember(tar, "a/b/c")).toString(), "abc");
  assert.equal((await tarMember(tar, "\u{1F600}")).toString(), "emoji");
});

test("a streamed blob one byte short fails the write, naming the blob, and leaves no file behind", async (t) => {
  const dir = await tmpDir(t, "gantry-archive-");
  const dest = join(dir, "short.tar");
  const entries: ArchiveEntry[] = [
    { name: "blobs/sha256/aaaa", size: 4096, open: streamOf(Buffer.alloc(4095, 7)), what: "layer 1 of image 1 (sha256:aaaa)" },
    { name: "index.json", bytes: Buffer.from("{}") },
  ];
  await assert.rejects(writeTarTo(dest, entries, {}), isCode("DIGEST_MISMATCH", "layer 1 of image 1 (sha256:aaaa)", "4095", "4096"));
  const long: ArchiveEntry[] = [{ name: "blob", size: 10, open: streamOf(Buffer.alloc(11)), what: "the long blob" }];
  await assert.rejects(writeTarTo(dest, long, {}), isCode("DIGEST_MISMATCH", "the long blob", "more than its declared 10"));
  assert.deepEqual(await readdir(dir), [], "neither the archive nor a temporary file");
});

test("an output that fails releases a blob stream still waiting for bytes", async () => {
  let source: Readable | undefined;
  const stalled = async (): Promise<Readable> => {
    // More than two of the tar's chunks (so the output is written to twice), then nothing:
    // it would wait forever unless the writer lets it go.
    let pushed = false;
    source = new Readable({ read() { if (!pushed) { pushed = true; this.push(Buffer.alloc(1_200_000)); } } });
    return source;
  };
  let writes = 0;
  const failing = new Writable({
    write(_chunk, _enc, cb) { cb(++writes > 1 ? new Error("no space left") : null); },
  });
  const entries: ArchiveEntry[] = [{ name: "blob", size: 4 << 20, open: stalled, what: "the stalled blob" }];
  await assert.rejects(writeTarArchive(entries, failing), /no space left/);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(source?.destroyed, true, "the blob stream was destroyed");
});

test("an abort while a blob is being read fails the write as ABORTED, releases the blob and leaves no file", async (t) => {
  const dir = await tmpDir(t, "gantry-archive-");
  const controller = new AbortController();
  let source: Readable | undefined;
  const stalled = async (): Promise<Readable> => {
    let pushed = false;
    source = new Readable({
      read() {
        if (pushed) return;
        pushed = true;
        this.push(Buffer.alloc(10));
        setImmediate(() => controller.abort());
      },
    });
    return source;
  };
  const entries: ArchiveEntry[] = [{ name: "blobs/b", size: 100, open: stalled, what: "the stalled blob" }];
  await assert.rejects(writeTarTo(join(dir, "out.tar"), entries, { signal: controller.signal }), isCode("ABORTED"));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(source?.destroyed, true, "the blob stream was destroyed");
  assert.deepEqual(await readdir(dir), []);
});
