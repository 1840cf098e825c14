/**
 * `gantry cache prune` (cache/prune.ts): what goes by age and by size, least recently used
 * first, where a use is a read through the blob store or a layer index hit (both set the
 * blob's mtime); index entries follow their blobs; a dry run removes nothing.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readdir, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { BlobStore, type StoredLayerBlob } from "../../src/cache/blob-store.js";
import { LayerIndex } from "../../src/cache/layer-index.js";
import { pruneCache } from "../../src/cache/prune.js";
import { sha256 } from "../../src/model/digest.js";
import { tmpDir } from "../helpers/tmp.js";

const DAY = 86_400_000;
const NOW = Date.now();

interface Cache { dir: string; store: BlobStore; index: LayerIndex; blobs: StoredLayerBlob[] }

/** A cache of `sizes.length` blobs, blob i of sizes[i] bytes last used ages[i] days ago, each with an index entry. */
async function makeCache(t: Parameters<typeof tmpDir>[0], sizes: number[], ages: number[]): Promise<Cache> {
  const dir = await tmpDir(t, "gantry-prune-");
  const store = new BlobStore(join(dir, "blobs"));
  const index = new LayerIndex(join(dir, "layers"));
  const blobs: StoredLayerBlob[] = [];
  for (const [i, size] of sizes.entries()) {
    const bytes = Buffer.alloc(size, i + 1);
    const temp = await store.tempPath();
    await writeFile(temp, bytes);
    const digest = sha256(bytes);
    await store.commit(temp, digest);
    const blob: StoredLayerBlob = { digest, diffId: digest, size, compression: "none" };
    await index.record({ hex: sha256(`key ${i}`).slice(7) }, blob);
    const when = new Date(NOW - ages[i]! * DAY);
    await utimes(store.pathOf(digest), when, when);
    blobs.push(blob);
  }
  return { dir, store, index, blobs };
}

const present = async (c: Cache): Promise<boolean[]> => Promise.all(c.blobs.map(async (b) => (await c.store.has(b.digest)) !== undefined));

test("by age: blobs unused for longer go, with their index entries; the rest stay", async (t) => {
  const c = await makeCache(t, [100, 200, 300], [40, 10, 1]);
  const r = await pruneCache({ cacheDir: c.dir, maxAgeMs: 30 * DAY, now: NOW });
  assert.deepEqual(await present(c), [false, true, true]);
  assert.deepEqual(r.removed, { blobs: 1, bytes: 100, indexEntries: 1, facts: 0, statTables: 0, records: 0 });
  assert.deepEqual(r.kept, { blobs: 2, bytes: 500 });
  assert.equal((await readdir(join(c.dir, "layers"))).length, 2);
  assert.equal(await c.index.lookup({ hex: sha256("key 0").slice(7) }, c.store), undefined);
});

test("by size: the least recently used go first until the rest fit", async (t) => {
  const c = await makeCache(t, [100, 100, 100, 100], [3, 1, 4, 2]);
  const r = await pruneCache({ cacheDir: c.dir, maxBytes: 250, now: NOW });
  // Oldest first: blob 2 (4 days), then blob 0 (3 days); 200 bytes are left.
  assert.deepEqual(await present(c), [false, true, false, true]);
  assert.equal(r.kept.bytes, 200);
});

test("a read and an index hit are uses: the blob used last survives a size limit", async (t) => {
  const c = await makeCache(t, [100, 100, 100], [5, 4, 3]);
  (await c.store.open(c.blobs[0]!.digest)).destroy();
  assert.ok((await stat(c.store.pathOf(c.blobs[0]!.digest))).mtimeMs > NOW - DAY, "open() marks the blob used");
  assert.ok(await c.index.lookup({ hex: sha256("key 1").slice(7) }, c.store));
  await pruneCache({ cacheDir: c.dir, maxBytes: 200 });
  assert.deepEqual(await present(c), [true, true, false]);
});

test("old facts, stat tables, snapshots, lookup journals and written-archive records go by age; a dry run counts and removes nothing", async (t) => {
  const c = await makeCache(t, [100], [60]);
  for (const [sub, name] of [["facts", "a.json"], ["stat", "b.idx"], ["snapshots", "c.json"], ["lookups", "d.json"], ["outputs", "e.json"]] as const) {
    await mkdir(join(c.dir, sub), { recursive: true });
    await writeFile(join(c.dir, sub, name), "x");
    const old = new Date(NOW - 60 * DAY);
    await utimes(join(c.dir, sub, name), old, old);
  }
  const dry = await pruneCache({ cacheDir: c.dir, maxAgeMs: 30 * DAY, dryRun: true, now: NOW });
  assert.deepEqual(dry.removed, { blobs: 1, bytes: 100, indexEntries: 1, facts: 1, statTables: 1, records: 3 });
  assert.deepEqual(await present(c), [true]);
  assert.equal((await readdir(join(c.dir, "facts"))).length, 1);
  await pruneCache({ cacheDir: c.dir, maxAgeMs: 30 * DAY, now: NOW });
  assert.deepEqual(await present(c), [false]);
  assert.deepEqual(await readdir(join(c.dir, "facts")), []);
  assert.deepEqual(await readdir(join(c.dir, "stat")), []);
  assert.deepEqual(await readdir(join(c.dir, "snapshots")), []);
  assert.deepEqual(await readdir(join(c.dir, "lookups")), []);
  assert.deepEqual(await readdir(join(c.dir, "outputs")), []);
});

test("an empty or missing cache prunes to nothing", async (t) => {
  const dir = await tmpDir(t, "gantry-prune-");
  const r = await pruneCache({ cacheDir: join(dir, "none"), maxAgeMs: DAY });
  assert.deepEqual(r.kept, { blobs: 0, bytes: 0 });
});
