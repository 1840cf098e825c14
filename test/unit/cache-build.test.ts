/**
 * buildImage with the layer index: what a rebuild reuses, what makes it pack again, and
 * that the cache never changes a result. Bases are the umoci-made OCI layout in
 * test/fixtures/formats/oci-umoci (refs "base": one layer, "app": two); archives are read
 * back with GNU tar. That a hit reads none of the base's layers is shown in
 * test/e2e/build-cache.test.ts, across processes (within one, merged trees are memoized).
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { link, lstat, mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { buildImage, type BuildOptions, type BuildResult } from "../../src/builder/build.js";
import type { ImageSpecInput } from "../../src/builder/spec-schema.js";
import { StatIndex } from "../../src/cache/stat-index.js";
import { digestHex, sha256 } from "../../src/model/digest.js";
import { REPO_ROOT } from "../helpers/paths.js";
import { settle } from "../helpers/settle.js";
import { tmpDir } from "../helpers/tmp.js";
import { fileInTopLayer } from "../helpers/archive.js";

const UMOCI_LAYOUT = join(REPO_ROOT, "test/fixtures/formats/oci-umoci");

interface Case {
  dir: string;
  cacheDir: string;
  build(spec: Partial<ImageSpecInput>, out: string, extra?: Partial<BuildOptions>): Promise<BuildResult & { messages: string[] }>;
}

async function makeCase(t: TestContext): Promise<Case> {
  const dir = await tmpDir(t);
  const cacheDir = join(dir, "cache");
  return {
    dir,
    cacheDir,
    async build(spec, out, extra = {}) {
      const messages: string[] = [];
      const full = { name: "cache-test", tag: "1", created: "2024-01-02T03:04:05Z", ...spec } as ImageSpecInput;
      const result = await buildImage({
        spec: full, specDir: dir, output: join(dir, out), cacheDir, env: {},
        onProgress: (e) => messages.push(e.message),
        ...extra,
      });
      return { ...result, messages };
    },
  };
}

async function writeTree(root: string, files: Record<string, string>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(join(root, rel, ".."), { recursive: true });
    await writeFile(join(root, rel), content);
  }
}

const newLayers = (r: BuildResult): BuildResult["layers"] => r.layers.filter((l) => !l.base);

test("a second build of the same spec reuses the stored layer: same bytes, blob not rewritten, nothing packed", async (t) => {
  const c = await makeCase(t);
  await writeTree(join(c.dir, "root"), { "app/a.txt": "alpha\n", "app/b.txt": "bravo\n" });
  await settle(c.dir);
  const first = await c.build({ copyToRoot: "./root" }, "first.tar");
  const [layer] = newLayers(first);
  assert.ok(layer !== undefined);
  assert.equal(layer.cached, false);
  const blobPath = join(c.cacheDir, "blobs/sha256", digestHex(layer.digest));
  const before = await lstat(blobPath, { bigint: true });
  assert.equal((await readdir(join(c.cacheDir, "layers"))).length, 1, "one index entry");

  const second = await c.build({ copyToRoot: "./root" }, "second.tar");
  assert.deepEqual(newLayers(second).map((l) => l.cached), [true]);
  assert.deepEqual(await readFile(join(c.dir, "second.tar")), await readFile(join(c.dir, "first.tar")));
  const after = await lstat(blobPath, { bigint: true });
  // Blobs are only ever written to a temporary name and renamed: the same inode is the same write.
  assert.equal(after.ino, before.ino, "the blob was not replaced");
  assert.ok(after.mtimeNs >= before.mtimeNs, "the hit marks the blob used, for cache prune");
  assert.ok(!second.messages.some((m) => /^(comparing|packing)/.test(m)), `no comparing or packing: ${second.messages.join(" | ")}`);
});

test("a first build packs before it keys; the key it files is the one a build that reads every file again finds", async (t) => {
  const c = await makeCase(t);
  const root = join(c.dir, "root");
  const files = { "app/a.txt": "alpha\n", "app/sub/b.txt": "bravo\n", "empty": "" };
  await writeTree(root, files);
  // Packed as a hardlink to app/a-again.txt (first in path order): its digest is not one packing learnt.
  await link(join(root, "app/a.txt"), join(root, "app/a-again.txt"));
  await settle(c.dir);
  const first = await c.build({ copyToRoot: "./root" }, "first.tar");
  assert.deepEqual(newLayers(first).map((l) => l.cached), [false]);
  // The stat index has every file, with the digest of its bytes.
  const table = await new StatIndex(join(c.cacheDir, "stat")).table(root);
  const expected: Record<string, string> = { ...files, "app/a-again.txt": files["app/a.txt"] };
  assert.deepEqual([...table.lines.keys()].sort(), Object.keys(expected).sort());
  for (const [path, content] of Object.entries(expected)) {
    assert.ok(table.lines.get(path)?.endsWith(`\0${digestHex(sha256(content))}`), `${path}: ${table.lines.get(path)}`);
  }
  // The next build makes the key first (the index knows these sources) and, with no snapshot
  // and every fingerprint changed, from every file read again: it must find the first's layer.
  await rm(join(c.cacheDir, "snapshots"), { recursive: true });
  execFileSync("touch", ["-d", "2001-02-03", ...Object.keys(expected).map((p) => join(root, p))]);
  await settle(c.dir);
  const second = await c.build({ copyToRoot: "./root" }, "second.tar");
  assert.deepEqual(newLayers(second).map((l) => l.cached), [true], second.messages.join(" | "));
  assert.deepEqual(await readFile(join(c.dir, "second.tar")), await readFile(join(c.dir, "first.tar")));
});

test("an edit of the same size with its mtime restored is seen: the layer is packed again with the new content", async (t) => {
  const c = await makeCase(t);
  const file = join(c.dir, "root/app/a.txt");
  await writeTree(join(c.dir, "root"), { "app/a.txt": "alpha\n" });
  await settle(c.dir);
  await c.build({ copyToRoot: "./root" }, "first.tar");
  execFileSync("touch", ["-r", file, join(c.dir, "times")]);
  await writeFile(file, "ALPHA\n");
  execFileSync("touch", ["-r", join(c.dir, "times"), file]);
  const second = await c.build({ copyToRoot: "./root" }, "second.tar");
  assert.deepEqual(newLayers(second).map((l) => l.cached), [false]);
  assert.equal(fileInTopLayer(join(c.dir, "second.tar"), "app/a.txt"), "ALPHA\n");
  assert.equal(fileInTopLayer(join(c.dir, "first.tar"), "app/a.txt"), "alpha\n");
});

test("deleting the cache gives the same bytes; --no-cache neither reads nor writes it", async (t) => {
  const c = await makeCase(t);
  await writeTree(join(c.dir, "root"), { "etc/x.conf": "x = 1\n", "bin/tool": "#!/bin/sh\n" });
  await settle(c.dir);
  const spec = { copyToRoot: "./root", fromImage: `oci:${UMOCI_LAYOUT}:base` };
  const noCache = await c.build(spec, "no-cache.tar", { noCache: true });
  await assert.rejects(lstat(c.cacheDir), { code: "ENOENT" }, "--no-cache created the cache");
  assert.deepEqual(newLayers(noCache).map((l) => l.cached), [false]);

  await c.build(spec, "cold.tar");
  const warm = await c.build(spec, "warm.tar");
  assert.deepEqual(newLayers(warm).map((l) => l.cached), [true]);
  const listing = async (): Promise<string[]> => (await readdir(c.cacheDir, { recursive: true })).sort();
  const cacheBefore = await listing();
  const bypass = await c.build(spec, "bypass.tar", { noCache: true });
  assert.deepEqual(newLayers(bypass).map((l) => l.cached), [false], "--no-cache does not read the index");
  assert.deepEqual(await listing(), cacheBefore, "--no-cache wrote into the cache");

  await rm(c.cacheDir, { recursive: true });
  const rebuilt = await c.build(spec, "rebuilt.tar");
  assert.deepEqual(newLayers(rebuilt).map((l) => l.cached), [false]);
  const bytes = await readFile(join(c.dir, "no-cache.tar"));
  for (const name of ["cold.tar", "warm.tar", "bypass.tar", "rebuilt.tar"]) {
    assert.ok((await readFile(join(c.dir, name))).equals(bytes), `${name} differs from the build without cache`);
  }
});

test("a layer misses when anything below it changes: another base, or an earlier new layer", async (t) => {
  const c = await makeCase(t);
  await writeTree(join(c.dir, "one"), { "one.txt": "1\n" });
  await writeTree(join(c.dir, "two"), { "two.txt": "2\n" });
  await settle(c.dir);
  const onBase = (ref: string): Partial<ImageSpecInput> => ({ fromImage: `oci:${UMOCI_LAYOUT}:${ref}`, copyToRoot: "./one" });
  const cached = (r: BuildResult): boolean[] => newLayers(r).map((l) => l.cached);
  assert.deepEqual(cached(await c.build(onBase("base"), "a.tar")), [false]);
  assert.deepEqual(cached(await c.build(onBase("app"), "b.tar")), [false], "another base (other diffIds) missed");
  assert.deepEqual(cached(await c.build(onBase("base"), "c.tar")), [true]);
  assert.deepEqual(cached(await c.build(onBase("app"), "d.tar")), [true]);

  const twoLayers = { layers: [{ copyToRoot: "./one" }, { copyToRoot: "./two" }] };
  assert.deepEqual(cached(await c.build(twoLayers, "e.tar")), [false, false]);
  assert.deepEqual(cached(await c.build(twoLayers, "f.tar")), [true, true]);
  await writeFile(join(c.dir, "two/two.txt"), "2, edited\n");
  await settle(c.dir);
  assert.deepEqual(cached(await c.build(twoLayers, "g.tar")), [true, false]);
  await writeFile(join(c.dir, "one/one.txt"), "1, edited\n");
  await settle(c.dir);
  // Layer 2's files are unchanged, but the layer below it is not.
  assert.deepEqual(cached(await c.build(twoLayers, "h.tar")), [false, false]);
});

test("layers made by a script are never cached", async (t) => {
  const c = await makeCase(t);
  await writeTree(join(c.dir, "root"), { "in.txt": "in\n" });
  await settle(c.dir);
  const spec = { layers: [{ copyToRoot: "./root" }, { copyToRoot: "./root", extraCommands: "echo made > made.txt" }] };
  await c.build(spec, "first.tar");
  const second = await c.build(spec, "second.tar");
  assert.deepEqual(newLayers(second).map((l) => l.cached), [true, false]);
  assert.equal((await readdir(join(c.cacheDir, "layers"))).length, 1, "only the copyToRoot layer is in the index");
  assert.equal(fileInTopLayer(join(c.dir, "second.tar"), "made.txt"), "made\n");
});

test("a damaged cached blob is named, and deleting it packs the layer again", async (t) => {
  const c = await makeCase(t);
  await writeTree(join(c.dir, "root"), { "a.txt": "a\n" });
  await settle(c.dir);
  const first = await c.build({ copyToRoot: "./root" }, "first.tar");
  const blobPath = join(c.cacheDir, "blobs/sha256", digestHex(first.layers[0]!.digest));
  const blob = await readFile(blobPath);
  blob[blob.length - 1]! ^= 0xff;
  await writeFile(blobPath, blob);
  await assert.rejects(c.build({ copyToRoot: "./root" }, "damaged.tar"), (err: Error & { code?: string }) => {
    assert.equal(err.code, "DIGEST_MISMATCH");
    assert.ok(err.message.includes(blobPath), err.message);
    return true;
  });
  await rm(blobPath);
  const again = await c.build({ copyToRoot: "./root" }, "again.tar");
  assert.deepEqual(newLayers(again).map((l) => l.cached), [false]);
  assert.deepEqual(await readFile(join(c.dir, "again.tar")), await readFile(join(c.dir, "first.tar")));
});
