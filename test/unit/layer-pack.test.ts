import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { buffer } from "node:stream/consumers";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { BlobStore } from "../../src/cache/blob-store.js";
import { diffLayer, type LayerEntry } from "../../src/layer/differ.js";
import { packLayer } from "../../src/layer/pack.js";
import { DEFAULT_GZIP_LEVEL } from "../../src/compression/compression.js";
import { walkSources } from "../../src/layer/sources.js";
import { tarStream } from "../../src/layer/tar-writer.js";
import { FileTree } from "../../src/layer/tree.js";
import { sha256, type Digest } from "../../src/model/digest.js";
import { hashFileSync } from "../../src/layer/hash-file.js";
import { READ_CHUNK, WRITE_BUFFER } from "../../src/util/io.js";
import { GantryError } from "../../src/model/errors.js";
import { tempDir } from "../fixtures/layer/helpers.js";

async function sampleEntries(root: string): Promise<LayerEntry[]> {
  await mkdir(join(root, "data"), { recursive: true });
  await writeFile(join(root, "data/random.bin"), randomBytes(3 * 1024 * 1024 + 17));
  await writeFile(join(root, "data/text.txt"), "compressible ".repeat(100_000));
  await writeFile(join(root, "empty"), "");
  return diffLayer(new FileTree(), await walkSources([{ from: root, to: "/" }]), {
    uid: 0, gid: 0, uname: "", gname: "", mtime: 1, perms: [], deletions: false,
  });
}

test("packLayer stores the blob under its digest; diffId is the tar's sha256; peers decompress it", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const entries = await sampleEntries(join(dir, "src"));
    const tar = await buffer(tarStream(entries));
    const store = new BlobStore(join(dir, "store"));
    for (const compression of ["gzip", "zstd", "none"] as const) {
      const layer = await packLayer(entries, { compression, store, describe: `the ${compression} test layer` });
      const blob = await readFile(store.pathOf(layer.digest));
      assert.equal(layer.diffId, sha256(tar), compression);
      assert.equal(layer.digest, sha256(blob), compression);
      assert.equal(layer.size, blob.length, compression);
      assert.equal(layer.compression, compression);
      assert.ok((await buffer(await layer.openUncompressed())).equals(tar), `${compression} round trip`);
      const plain = compression === "gzip" ? execFileSync("gzip", ["-dc"], { input: blob, maxBuffer: 1 << 26 })
        : compression === "zstd" ? execFileSync("zstd", ["-dc"], { input: blob, maxBuffer: 1 << 26 })
        : blob;
      assert.ok(plain.equals(tar), `${compression}: a peer tool decompresses it to the tar`);
      if (compression === "none") assert.equal(layer.digest, layer.diffId);
      else assert.ok(layer.size < tar.length - 1_000_000, `${compression} compresses the text`);
    }
    const again = await packLayer(entries, { compression: "gzip", store, describe: "again" });
    const first = await packLayer(entries, { compression: "gzip", level: DEFAULT_GZIP_LEVEL, store, describe: "explicit level" });
    assert.equal(again.digest, first.digest, "same entries and level, same bytes");
    const fast = await packLayer(entries, { compression: "gzip", level: 1, store, describe: "level 1" });
    assert.notEqual(fast.digest, first.digest);
    assert.equal(fast.diffId, first.diffId);
    assert.deepEqual(await readdir(join(dir, "store/tmp")), [], "no temporary file is left behind");
  } finally {
    await cleanup();
  }
});

test("a failing pack leaves no blob and no temporary file", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const entries = await sampleEntries(join(dir, "src"));
    const store = new BlobStore(join(dir, "store"));
    const broken = entries.map((e) => e.path === "data/text.txt" ? { ...e, content: { kind: "hostFile" as const, path: join(dir, "gone") } } : e);
    await assert.rejects(packLayer(broken, { compression: "gzip", store, describe: "broken" }),
      (err: unknown) => err instanceof GantryError && err.code === "SOURCE_UNREADABLE" && err.message.includes(join(dir, "gone")));
    assert.deepEqual(await readdir(join(dir, "store/tmp")), []);
    assert.deepEqual(await readdir(join(dir, "store/sha256")), []);
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(packLayer(entries, { compression: "gzip", store, describe: "aborted", signal: controller.signal }),
      (err: unknown) => err instanceof GantryError && err.code === "ABORTED");
    assert.deepEqual(await readdir(join(dir, "store/tmp")), []);
  } finally {
    await cleanup();
  }
});

test("the content digests learnt while packing, and those of hashFileSync, are the sha256 of each file at every size around the buffers", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    // Sizes at the edges of a one-read file: the read chunk (hashing), the sink's buffer (packing), and several of each.
    const sizes = [0, 1, 2000, READ_CHUNK - 1, READ_CHUNK, READ_CHUNK + 1, 3 * READ_CHUNK + 5, WRITE_BUFFER - 1, WRITE_BUFFER, WRITE_BUFFER + 1];
    const root = join(dir, "src");
    await mkdir(root);
    const expected = new Map<string, string>();
    for (const size of sizes) {
      const bytes = randomBytes(size);
      await writeFile(join(root, `f${size}`), bytes);
      expected.set(`f${size}`, sha256(bytes));
    }
    const entries = await diffLayer(new FileTree(), await walkSources([{ from: root, to: "/" }]), {
      uid: 0, gid: 0, uname: "", gname: "", mtime: 1, perms: [], deletions: false,
    });
    const fileDigests = new Map<string, Digest>();
    await packLayer(entries, { compression: "none", store: new BlobStore(join(dir, "store")), describe: "sizes", fileDigests });
    assert.deepEqual(new Map([...fileDigests].sort()), new Map([...expected].sort()), "as packed");
    const chunk = Buffer.alloc(READ_CHUNK);
    for (const [name, digest] of expected) assert.equal(hashFileSync(join(root, name), chunk), digest, `${name}, hashed alone`);
  } finally {
    await cleanup();
  }
});
