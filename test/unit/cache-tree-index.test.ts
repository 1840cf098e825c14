/**
 * The tree index: merged trees kept in the cache by chain of diffIds, so a changed top layer
 * is compared with the layers below without decompressing them. What it keeps must be what
 * reading the layers gives, and a damaged entry must be a miss, never a wrong tree.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { link, mkdir, readFile, readdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { buildImage } from "../../src/builder/build.js";
import type { ImageSpecInput } from "../../src/builder/spec-schema.js";
import { TreeIndex } from "../../src/cache/tree-index.js";
import type { Layer } from "../../src/model/image.js";
import { applyLayer } from "../../src/layer/apply-layer.js";
import { forgetMergedTrees } from "../../src/layer/merged-tree.js";
import { FileTree, treeRecords } from "../../src/layer/tree.js";
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

test("the tree a packed layer records is the tree reading the layers back gives", async (t) => {
  const dir = await tmpDir(t);
  await sources(dir);
  await settle(dir);
  const cacheDir = join(dir, "cache");
  const result = await build(t, dir, cacheDir);
  const layers = result.image.layers;
  const belowTop = layers.slice(0, -1);
  // The build recorded the tree under the top layer while packing the layer below it.
  const stored = await new TreeIndex(join(cacheDir, "trees")).load(belowTop.map((l) => l.diffId));
  assert.ok(stored, "the tree under the top layer is in the index");
  assert.deepEqual(treeRecords(stored), treeRecords(await readBack(belowTop)));
  const nodes = new Map(treeRecords(stored).map((r) => [r[0], r]));
  assert.equal(nodes.get("lib/nested")?.[2], 0o700, "perms are in the recorded tree");
  assert.equal(nodes.get("lib/a.js")?.[1], "hardlink", "the group's first name in byte order (a-hard.js) holds the bytes");
  assert.equal(nodes.get("main.js")?.[7], "lib/a.js");
});

test("a damaged or cut index entry is a miss, and the next build writes it again", async (t) => {
  const dir = await tmpDir(t);
  await sources(dir);
  await settle(dir);
  const cacheDir = join(dir, "cache");
  const first = await build(t, dir, cacheDir);
  const index = new TreeIndex(join(cacheDir, "trees"));
  const chain = first.image.layers.slice(0, -1).map((l) => l.diffId);
  const path = index.pathOf(chain);
  const good = await readFile(path);

  const flipped = Buffer.from(good);
  flipped[flipped.length - 10] = flipped[flipped.length - 10]! ^ 0x01;
  for (const damaged of [flipped, good.subarray(0, good.length - 7), Buffer.from("not a tree index\n[]")]) {
    await writeFile(path, damaged);
    assert.equal(await index.load(chain), undefined);
  }

  // A build that needs it (in a new process: nothing remembered) reads the layers again
  // (same result) and stores the tree anew.
  forgetMergedTrees();
  await writeFile(join(dir, "app/index.js"), "console.log(2);\n");
  await settle(dir);
  const second = await build(t, dir, cacheDir);
  assert.notEqual(second.manifestDigest, first.manifestDigest);
  assert.deepEqual(await readFile(path), good, "rewritten to the same bytes");
  assert.ok((await readdir(join(cacheDir, "trees"))).every((n) => n.endsWith(".json")), "no temporary files left");
});

test("trees are keyed by the whole chain: another base below is another tree", async (t) => {
  const dir = await tmpDir(t);
  const index = new TreeIndex(join(dir, "trees"));
  const tree = new FileTree();
  tree.set("a", { type: "file", mode: 0o644, uid: 0, gid: 0, size: 1, mtime: 0, layerIndex: 0, contentDigest: `sha256:${"1".repeat(64)}` });
  const one = `sha256:${"a".repeat(64)}` as const;
  const two = `sha256:${"b".repeat(64)}` as const;
  await index.save([one, two], tree);
  assert.ok(await index.load([one, two]));
  assert.equal(await index.load([two, one]), undefined);
  assert.equal(await index.load([one]), undefined);
});
