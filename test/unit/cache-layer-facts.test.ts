/**
 * The layer facts index: what each layer says, kept in the cache by diffId, so a changed top
 * layer is compared with the layers below without decompressing them. What it keeps must be
 * what reading the layer gives, and a damaged entry must be a miss, never wrong facts. A
 * layer's facts are written a piece at a time, in the bytes one JSON text would give.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { link, mkdir, readFile, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { buildImage } from "../../src/builder/build.js";
import type { ImageSpecInput } from "../../src/builder/spec-schema.js";
import { LayerFactsIndex } from "../../src/cache/layer-facts.js";
import { readSealed, writeSealed, writeSealedRecords } from "../../src/cache/sealed-file.js";
import type { Layer } from "../../src/model/image.js";
import { applyLayer, packedFacts, replayFacts, type EntryFacts } from "../../src/layer/apply-layer.js";
import type { LayerEntry } from "../../src/layer/differ.js";
import { sha256 } from "../../src/model/digest.js";
import { forgetMergedTrees } from "../../src/layer/merged-tree.js";
import { FileTree } from "../../src/layer/tree.js";
import { REPO_ROOT } from "../helpers/paths.js";
import { settle } from "../helpers/settle.js";
import { tmpDir } from "../helpers/tmp.js";

const UMOCI_LAYOUT = join(REPO_ROOT, "test/fixtures/formats/oci-umoci");

/** The merged tree of `layers` read from the layers themselves, with no cache of any kind. */
async function readBack(layers: readonly Layer[]): Promise<FileTree> {
  const tree = new FileTree();
  for (const [i, layer] of layers.entries()) await applyLayer(tree, layer, i, `layer ${i + 1}`, undefined);
  return tree;
}

/** A tree as comparable rows: path and every field of its node. */
function rows(tree: FileTree): unknown[] {
  return [...tree.entries()].map(([path, node]) => [path, { ...node }]);
}

async function sources(dir: string): Promise<void> {
  await mkdir(join(dir, "deps/lib/nested"), { recursive: true });
  await writeFile(join(dir, "deps/lib/a.js"), "module.exports = 1;\n");
  await writeFile(join(dir, "deps/lib/nested/empty"), "");
  await link(join(dir, "deps/lib/a.js"), join(dir, "deps/lib/a-hard.js"));
  await symlink("lib/a.js", join(dir, "deps/main.js"));
  // etc/ is in the base: this file replaces the base's, and the directory is not restated.
  await mkdir(join(dir, "deps/etc"), { recursive: true });
  await writeFile(join(dir, "deps/etc/changed.txt"), "ours\n");
  await mkdir(join(dir, "app"), { recursive: true });
  await writeFile(join(dir, "app/index.js"), "console.log(1);\n");
}

function spec(): ImageSpecInput {
  return {
    name: "tree-index", tag: "1", created: "2024-01-02T03:04:05Z",
    fromImage: `oci:${UMOCI_LAYOUT}:app`,
    layers: [
      { copyToRoot: ["./deps"], perms: [{ path: "/lib/nested", mode: "0700" }] },
      { copyToRoot: [{ from: "./app", to: "/app" }] },
    ],
  };
}

async function build(t: TestContext, dir: string, cacheDir: string) {
  void t;
  return buildImage({ spec: spec(), specDir: dir, output: join(dir, "out.tar"), cacheDir, env: {} });
}

test("the facts a packed layer records are what reading the layer back gives", async (t) => {
  const dir = await tmpDir(t);
  await sources(dir);
  await settle(dir);
  const cacheDir = join(dir, "cache");
  const result = await build(t, dir, cacheDir);
  const layers = result.image.layers;
  const belowTop = layers.slice(0, -1);
  const packed = belowTop[belowTop.length - 1]!;
  // The build recorded the facts of the layer under the top one while packing it.
  const stored = await new LayerFactsIndex(join(cacheDir, "facts")).load(packed.diffId);
  assert.ok(stored, "the packed layer's facts are in the index");
  const read: EntryFacts[] = [];
  await applyLayer(new FileTree(), packed, 0, "the packed layer", undefined, (f) => read.push(f));
  assert.equal(stored.length, read.length, "one fact per tar entry");
  assert.deepEqual(stored.map((f) => f.content), read.map((f) => f.content), "the same content digests, entry by entry");
  // Replayed over the base, they give the tree reading every layer gives.
  const replayed = await readBack(belowTop.slice(0, -1));
  replayFacts(replayed, stored, belowTop.length - 1, "the packed layer");
  const fresh = await readBack(belowTop);
  assert.deepEqual(rows(replayed), rows(fresh));
  assert.equal(fresh.get("lib/nested")?.mode, 0o700, "perms are in the recorded tree");
  assert.equal(fresh.get("lib/a.js")?.type, "hardlink", "the group's first name in byte order (a-hard.js) holds the bytes");
  assert.equal(fresh.get("main.js")?.linkname, "lib/a.js");
});

test("a damaged or cut index entry is a miss, and the next build writes it again", async (t) => {
  const dir = await tmpDir(t);
  await sources(dir);
  await settle(dir);
  const cacheDir = join(dir, "cache");
  const first = await build(t, dir, cacheDir);
  const index = new LayerFactsIndex(join(cacheDir, "facts"));
  const layers = first.image.layers;
  const diffId = layers[layers.length - 2]!.diffId;
  const path = index.pathOf(diffId);
  const good = await readFile(path);

  const flipped = Buffer.from(good);
  flipped[flipped.length - 10] = flipped[flipped.length - 10]! ^ 0x01;
  for (const damaged of [flipped, good.subarray(0, good.length - 7), Buffer.from("not a tree index\n[]")]) {
    await writeFile(path, damaged);
    assert.equal(await index.load(diffId), undefined);
  }

  // A build that needs it (in a new process: nothing remembered, and no lookup journal to
  // answer the comparison) reads the layers again (same result) and stores the tree anew.
  forgetMergedTrees();
  await rm(join(cacheDir, "lookups"), { recursive: true, force: true });
  await writeFile(join(dir, "app/index.js"), "console.log(2);\n");
  await settle(dir);
  const second = await build(t, dir, cacheDir);
  assert.notEqual(second.manifestDigest, first.manifestDigest);
  const again = await index.load(diffId);
  assert.ok(again, "written again, and whole");
  const below = layers.slice(0, -2);
  const [fromGood, fromAgain] = [await readBack(below), await readBack(below)];
  replayFacts(fromGood, (await (async () => { await writeFile(path, good); return index.load(diffId); })())!, below.length, "good");
  replayFacts(fromAgain, again, below.length, "again");
  assert.deepEqual(rows(fromAgain), rows(fromGood), "what it says is what it said");
  assert.ok((await readdir(join(cacheDir, "facts"))).every((n) => n.endsWith(".json")), "no temporary files left");
});

test("facts are keyed by the layer's diffId alone", async (t) => {
  const dir = await tmpDir(t);
  const index = new LayerFactsIndex(join(dir, "facts"));
  const one = `sha256:${"a".repeat(64)}` as const;
  const two = `sha256:${"b".repeat(64)}` as const;
  const facts = [{ name: "a", type: "file" as const, mode: 0o644, uid: 0, gid: 0, mtime: 0, linkname: undefined, devmajor: undefined, devminor: undefined, content: { size: 1, digest: `sha256:${"1".repeat(64)}` as const } }];
  await index.save(one, facts);
  assert.deepEqual(await index.load(one), facts);
  assert.equal(await index.load(two), undefined);
});

test("records written a piece at a time, once each, are the bytes one JSON text gives, and read back whole", async (t) => {
  const dir = await tmpDir(t);
  // Pieces are 2,000 records: none, one, a whole piece, one past it, and pieces and a part.
  for (const count of [0, 1, 2000, 2001, 4500]) {
    const items = Array.from({ length: count }, (_, i) => ({ name: `dir/f${i}.txt`, note: i % 3 === 0 ? "é \"q\"" : null }));
    let made = 0;
    const toRecord = (item: { name: string; note: string | null }): unknown => {
      made++;
      return [item.name, item.note];
    };
    await writeSealed(join(dir, `whole-${count}`), "test format", items.map(toRecord), { entries: count });
    made = 0;
    await writeSealedRecords(join(dir, `pieces-${count}`), "test format", items, toRecord, { entries: count });
    assert.equal(made, count, "each record is made once: the header's digest does not cost a second pass");
    assert.deepEqual(await readFile(join(dir, `pieces-${count}`)), await readFile(join(dir, `whole-${count}`)), `${count} records`);
    const read = await readSealed(join(dir, `pieces-${count}`), "test format");
    assert.deepEqual(read?.body, items.map(toRecord));
  }
});

test("a packed layer's facts are read off its entries by index, and a file packed without its digest fails at once", () => {
  const owner = { uid: 0, gid: 0, uname: "", gname: "", mtime: 1 };
  const entries: LayerEntry[] = [
    { path: "app", type: "dir", mode: 0o755, size: 0, ...owner },
    { path: "app/f.txt", type: "file", mode: 0o644, size: 3, ...owner, content: { kind: "hostFile", path: "/src/f.txt" } },
    { path: "app/link", type: "symlink", mode: 0o777, size: 0, linkname: "f.txt", ...owner },
  ];
  const digest = sha256("abc");
  const facts = packedFacts(entries, new Map([["app/f.txt", digest]]), "the test layer");
  assert.equal(facts.length, 3);
  assert.deepEqual(facts.at(1), {
    name: "app/f.txt", type: "file", mode: 0o644, uid: 0, gid: 0, mtime: 1,
    linkname: undefined, devmajor: undefined, devminor: undefined, content: { size: 3, digest },
  });
  assert.equal(facts.at(0)?.content, undefined);
  assert.equal(facts.at(2)?.linkname, "f.txt");
  assert.equal(facts.at(3), undefined);
  // Checked when the view is made, not when a store reads it (a store's failure is swallowed).
  assert.throws(() => packedFacts(entries, new Map(), "the test layer"), /the content digest of app\/f\.txt in the test layer was not recorded/);
});
