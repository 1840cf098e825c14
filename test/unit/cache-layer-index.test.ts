/**
 * The layer index (cache/layer-index.ts): lookups that must fall back to a miss rather than
 * trust a stale record, concurrent records; and the fingerprinting walk the stat index
 * reads. Source trees are made here with plain fs calls; blobs are arbitrary bytes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { link, lstat, mkdir, readFile, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { BlobStore, type StoredLayerBlob } from "../../src/cache/blob-store.js";
import { LayerIndex } from "../../src/cache/layer-index.js";
import { sha256 } from "../../src/model/digest.js";
import { walkSources } from "../../src/layer/sources.js";
import { tmpDir } from "../helpers/tmp.js";

async function someBlob(store: BlobStore, content = "layer bytes"): Promise<StoredLayerBlob> {
  const temp = await store.tempPath();
  await writeFile(temp, content);
  const digest = sha256(content);
  await store.commit(temp, digest);
  return { digest, diffId: sha256(`uncompressed ${content}`), size: Buffer.byteLength(content), compression: "gzip" };
}

test("lookup finds a recorded blob only while the store holds it with its recorded size", async (t) => {
  const dir = await tmpDir(t);
  const store = new BlobStore(join(dir, "blobs"));
  const index = new LayerIndex(join(dir, "layers"));
  const key = { hex: "ab".repeat(32) };
  assert.equal(await index.lookup(key, store), undefined, "nothing recorded");

  const blob = await someBlob(store);
  await index.record(key, blob);
  assert.deepEqual(await index.lookup(key, store), blob);
  assert.deepEqual(JSON.parse(await readFile(index.pathOf(key), "utf8")), blob);

  await index.record(key, { ...blob, size: blob.size + 1 });
  assert.equal(await index.lookup(key, store), undefined, "the stored blob has another size");

  await index.record(key, blob);
  await rm(store.pathOf(blob.digest));
  assert.equal(await index.lookup(key, store), undefined, "the blob was removed from the store");

  await someBlob(store);
  for (const damaged of ["{", "[]", JSON.stringify({ ...blob, digest: "sha256:xyz" }), JSON.stringify({ ...blob, compression: "lz4" })]) {
    await writeFile(index.pathOf(key), damaged);
    assert.equal(await index.lookup(key, store), undefined, `a damaged record ${damaged}`);
  }
});

test("concurrent records of one key leave one whole entry and no temporary files", async (t) => {
  const dir = await tmpDir(t);
  const store = new BlobStore(join(dir, "blobs"));
  const index = new LayerIndex(join(dir, "layers"));
  const blobs = await Promise.all(Array.from({ length: 8 }, (_, i) => someBlob(store, `blob ${i}`)));
  const key = { hex: "cd".repeat(32) };
  await Promise.all(Array.from({ length: 40 }, (_, i) => index.record(key, blobs[i % blobs.length]!)));
  assert.deepEqual(await readdir(index.root), [`${key.hex}.json`]);
  const found = await index.lookup(key, store);
  assert.ok(found !== undefined && blobs.some((b) => b.digest === found.digest), "one of the recorded blobs, whole");
});

test("a fingerprinting walk leaves the nodes as they are and fingerprints the regular files that survive the overlay", async (t) => {
  const dir = await tmpDir(t);
  await mkdir(join(dir, "one/d"), { recursive: true });
  await writeFile(join(dir, "one/x"), "x");
  await writeFile(join(dir, "one/d/inner"), "replaced with d");
  await link(join(dir, "one/x"), join(dir, "one/x-hard"));
  await symlink("x", join(dir, "one/x-link"));
  await mkdir(join(dir, "two"));
  await writeFile(join(dir, "two/d"), "d is a file now");
  // A file a later source makes a directory, and one it replaces with a symlink.
  await writeFile(join(dir, "one/f"), "becomes a directory");
  await mkdir(join(dir, "two/f"));
  await writeFile(join(dir, "two/f/g"), "g");
  await writeFile(join(dir, "one/s"), "becomes a symlink");
  await symlink("x", join(dir, "two/s"));
  // A file that becomes the directory above a later source's destination.
  await writeFile(join(dir, "one/t"), "becomes a directory too");
  await mkdir(join(dir, "three"));
  await writeFile(join(dir, "three/h"), "h");
  const sources = [{ from: join(dir, "one"), to: "/" }, { from: join(dir, "two"), to: "/" }, { from: join(dir, "three"), to: "/t/inner" }];

  const plain = await walkSources(sources);
  const printed = await walkSources(sources, { fingerprint: true });
  assert.deepEqual([...printed.entries()], [...plain.entries()], "the same nodes, nothing added to them");
  assert.equal(plain.fingerprints.size, 0);
  assert.deepEqual([...printed.fingerprints.keys()].sort(), ["d", "f/g", "t/inner/h", "x", "x-hard"]);

  const st = await lstat(join(dir, "one/x"), { bigint: true });
  assert.equal(printed.fingerprints.get("x"), [st.dev, st.ino, st.mode, st.size, st.mtimeNs, st.ctimeNs].join("\0"));
  const inode = (path: string): string | undefined => printed.fingerprints.get(path)?.split("\0")[1];
  assert.equal(inode("x-hard"), String(st.ino));
  assert.equal(inode("d"), String((await lstat(join(dir, "two/d"), { bigint: true })).ino));
});
