/**
 * The cache's book of blob locations (cache/blob-locations.ts): what it answers after
 * pushes and pulls remembered blobs, the order of its answers, forgetting, many writers at
 * once (threads of one process and separate processes), and a cache it cannot use, which
 * must never fail the caller.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdir, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { BlobLocationsFile, blobLocationsIn } from "../../src/cache/blob-locations.js";
import { sha256 } from "../../src/model/digest.js";
import { tmpDir } from "../helpers/tmp.js";

const execFileP = promisify(execFile);
const A = sha256("blob a");
const B = sha256("blob b");
const REGISTRY = "127.0.0.1:5000";

test("what is remembered is answered per registry and blob, the most recently seen first; forgotten, it is gone", async (t) => {
  const book = blobLocationsIn(await tmpDir(t));
  assert.deepEqual(await book.repositoriesWith(REGISTRY, A), []);
  await book.remember(REGISTRY, "team/app", A);
  await book.remember(REGISTRY, "base", A);
  await book.remember(REGISTRY, "other", B);
  await book.remember("127.0.0.1:5001", "elsewhere", A);
  // "base" was seen an hour ago; "team/app" is seen again now.
  const old = new Date(Date.now() - 3600_000);
  await utimes(join(book.root, encodeURIComponent(REGISTRY), A.slice(7), "base"), old, old);
  await book.remember(REGISTRY, "team/app", A);
  assert.deepEqual(await book.repositoriesWith(REGISTRY, A), ["team/app", "base"]);
  assert.deepEqual(await book.repositoriesWith(REGISTRY, B), ["other"]);
  assert.deepEqual(await book.repositoriesWith("127.0.0.1:5001", A), ["elsewhere"]);

  await book.forget(REGISTRY, "team/app", A);
  await book.forget(REGISTRY, "never/was", A);
  assert.deepEqual(await book.repositoriesWith(REGISTRY, A), ["base"]);
});

test("many writers at once, in this process and in two others, lose no fact and leave no stray file", async (t) => {
  const root = join(await tmpDir(t), "locations");
  const book = new BlobLocationsFile(root);
  const repositories = Array.from({ length: 40 }, (_, i) => `team/app-${i}`);
  const script = `
    import { BlobLocationsFile } from ${JSON.stringify(new URL("../../src/cache/blob-locations.js", import.meta.url).href)};
    const book = new BlobLocationsFile(${JSON.stringify(root)});
    const [from, to] = process.argv.slice(1).map(Number);
    await Promise.all(Array.from({ length: to - from }, (_, i) => book.remember(${JSON.stringify(REGISTRY)}, "proc/app-" + (from + i), ${JSON.stringify(A)})));
  `;
  await Promise.all([
    ...repositories.map((r) => book.remember(REGISTRY, r, A)),
    execFileP(process.execPath, ["--input-type=module", "-e", script, "0", "30"]),
    execFileP(process.execPath, ["--input-type=module", "-e", script, "30", "60"]),
  ]);
  const dir = join(root, encodeURIComponent(REGISTRY), A.slice(7));
  const names = (await readdir(dir)).map(decodeURIComponent).sort();
  const expected = [...repositories, ...Array.from({ length: 60 }, (_, i) => `proc/app-${i}`)].sort();
  assert.deepEqual(names, expected);
  assert.equal((await book.repositoriesWith(REGISTRY, A)).length, 16, "a lookup lists a bounded number");
});

test("a cache it cannot write or read answers nothing and never throws; names it cannot store are skipped", async (t) => {
  const dir = await tmpDir(t);
  const blocked = join(dir, "not-a-directory");
  await writeFile(blocked, "a file where the book's directory should be");
  const book = new BlobLocationsFile(blocked);
  await book.remember(REGISTRY, "app", A);
  await book.forget(REGISTRY, "app", A);
  assert.deepEqual(await book.repositoriesWith(REGISTRY, A), []);

  const fine = new BlobLocationsFile(join(dir, "ok"));
  await fine.remember(REGISTRY, "x".repeat(300), A);
  await fine.remember(REGISTRY, "app", "sha256:not-a-digest" as typeof A);
  assert.deepEqual(await fine.repositoriesWith(REGISTRY, A), []);
});
