/**
 * The layer index (cache/layer-index.ts): what goes into a layer's key, the racy-file
 * guard, and lookups that must fall back to a miss rather than trust a stale record.
 * Source trees are made here with plain fs calls; blobs are arbitrary bytes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmod, link, lstat, mkdir, readFile, readdir, rename, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { BlobStore, type StoredLayerBlob } from "../../src/cache/blob-store.js";
import { LayerIndex, layerKey, type LayerRecipe } from "../../src/cache/layer-index.js";
import { DEFAULT_GZIP_LEVEL } from "../../src/compression/compression.js";
import { sha256 } from "../../src/model/digest.js";
import { walkSources } from "../../src/layer/sources.js";
import { settle } from "../helpers/settle.js";
import { tmpDir } from "../helpers/tmp.js";

const BASE_DIFF_ID = sha256("a base layer");

async function writeSources(root: string): Promise<void> {
  await mkdir(join(root, "sub"), { recursive: true });
  await writeFile(join(root, "a.txt"), "alpha\n");
  await writeFile(join(root, "sub/b.txt"), "bravo\n");
  await symlink("a.txt", join(root, "link"));
}

function recipe(from: string, extra: Partial<LayerRecipe> = {}): LayerRecipe {
  return {
    below: [BASE_DIFF_ID],
    sources: [{ from, to: "/" }],
    perms: [],
    uid: 0, gid: 0, uname: "", gname: "",
    mtime: 1,
    compression: "gzip",
    ...extra,
  };
}

test("a key is the same for unchanged sources, wherever they live, and is not racy once they are old", async (t) => {
  const dir = await tmpDir(t);
  await writeSources(join(dir, "src"));
  await settle(dir);
  const first = await layerKey(recipe(join(dir, "src")));
  const again = await layerKey(recipe(join(dir, "src")));
  assert.match(first.hex, /^[0-9a-f]{64}$/);
  assert.deepEqual(again, first);
  assert.equal(first.racy, false);
  // Renaming the directory moves no file's inode or ctime: the host path is not an input.
  await rename(join(dir, "src"), join(dir, "moved"));
  assert.equal((await layerKey(recipe(join(dir, "moved")))).hex, first.hex);
});

test("an edit of the same size with the mtime put back still changes the key (ctime moved)", async (t) => {
  const dir = await tmpDir(t);
  const src = join(dir, "src");
  await writeSources(src);
  await settle(dir);
  const file = join(src, "a.txt");
  const before = await lstat(file, { bigint: true });
  const key = await layerKey(recipe(src));
  // GNU touch copies times to the nanosecond (utimes from JavaScript rounds them).
  execFileSync("touch", ["-r", file, join(dir, "times")]);
  await writeFile(file, "ALPHA\n");
  execFileSync("touch", ["-r", join(dir, "times"), file]);
  const after = await lstat(file, { bigint: true });
  assert.equal(after.size, before.size, "same size");
  assert.equal(after.mtimeNs, before.mtimeNs, "mtime restored");
  assert.notEqual((await layerKey(recipe(src))).hex, key.hex);
});

test("every input of the layer's bytes is part of its key", async (t) => {
  const dir = await tmpDir(t);
  const src = join(dir, "src");
  await writeSources(src);
  await settle(dir);
  const keyOf = async (extra: Partial<LayerRecipe> = {}): Promise<string> => (await layerKey(recipe(src, extra))).hex;
  const base = await keyOf();
  const variants: Record<string, Partial<LayerRecipe>> = {
    "another base": { below: [sha256("another base")] },
    "one more layer below": { below: [BASE_DIFF_ID, sha256("an earlier new layer")] },
    "laid at /app": { sources: [{ from: src, to: "/app" }] },
    "the sources twice": { sources: [{ from: src, to: "/" }, { from: src, to: "/again" }] },
    "a perms rule": { perms: [{ path: "/a.txt", mode: 0o600 }] },
    "uid": { uid: 1 },
    "gid": { gid: 1 },
    "uname": { uname: "root" },
    "gname": { gname: "root" },
    "mtime": { mtime: 2 },
    "zstd": { compression: "zstd" },
    "no compression": { compression: "none" },
    "gzip level 9": { level: 9 },
  };
  const keys = new Map<string, string>([["the recipe as is", base]]);
  for (const [what, extra] of Object.entries(variants)) keys.set(what, await keyOf(extra));
  // The default level spelled out is the same layer.
  assert.equal(await keyOf({ level: DEFAULT_GZIP_LEVEL }), base, "gzip's default level given explicitly");

  await chmod(join(src, "a.txt"), 0o600);
  keys.set("a mode", await keyOf());
  await writeFile(join(src, "sub/new.txt"), "");
  keys.set("a new empty file", await keyOf());
  await rm(join(src, "sub/new.txt"));
  await rm(join(src, "link"));
  await symlink("sub/b.txt", join(src, "link"));
  keys.set("a symlink's target", await keyOf());
  await link(join(src, "a.txt"), join(src, "hard"));
  keys.set("a hardlink", await keyOf());
  await mkdir(join(src, "empty-dir"));
  keys.set("an empty directory", await keyOf());

  const seen = new Map<string, string>();
  for (const [what, hex] of keys) {
    const clash = seen.get(hex);
    assert.equal(clash, undefined, `"${what}" gives the same key as "${clash}"`);
    seen.set(hex, what);
  }
});

test("a file changed just before the walk makes the key racy, and a racy key is not recorded", async (t) => {
  const dir = await tmpDir(t);
  const src = join(dir, "src");
  await writeSources(src);
  await settle(dir);
  await writeFile(join(src, "a.txt"), "fresh\n");
  const racy = await layerKey(recipe(src));
  assert.equal(racy.racy, true);
  const index = new LayerIndex(join(dir, "layers"));
  assert.equal(await index.record(racy, await someBlob(new BlobStore(join(dir, "blobs")))), false);
  await assert.rejects(readdir(index.root), { code: "ENOENT" });
  await settle(dir);
  const settled = await layerKey(recipe(src));
  assert.equal(settled.racy, false);
  assert.equal(settled.hex, racy.hex, "racy or not, the same files give the same key");
});

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
  const key = { hex: "ab".repeat(32), racy: false };
  assert.equal(await index.lookup(key, store), undefined, "nothing recorded");

  const blob = await someBlob(store);
  assert.equal(await index.record(key, blob), true);
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
  const key = { hex: "cd".repeat(32), racy: false };
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
  const sources = [{ from: join(dir, "one"), to: "/" }, { from: join(dir, "two"), to: "/" }];

  const plain = await walkSources(sources);
  const printed = await walkSources(sources, { fingerprint: true });
  assert.deepEqual([...printed.entries()], [...plain.entries()], "the same nodes, nothing added to them");
  assert.equal(plain.fingerprints.size, 0);
  assert.deepEqual([...printed.fingerprints.keys()].sort(), ["d", "x", "x-hard"]);

  const st = await lstat(join(dir, "one/x"), { bigint: true });
  assert.deepEqual(printed.fingerprints.get("x"), {
    dev: st.dev, ino: st.ino, mode: Number(st.mode), size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs,
  });
  assert.equal(printed.fingerprints.get("x-hard")?.ino, st.ino);
  assert.equal(printed.fingerprints.get("d")?.ino, (await lstat(join(dir, "two/d"), { bigint: true })).ino);
});
