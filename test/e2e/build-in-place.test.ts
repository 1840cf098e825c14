/**
 * A build into an archive file packs its new layers straight into the archive
 * (archive/assembly.ts) instead of into a blob file that is copied after. The archive must
 * be, byte for byte, the one written to standard output, where nothing is in place: with
 * and without a cache, on a base, with a layer from the cache between new ones, with a layer
 * the image holds twice; and a build that fails leaves neither the destination nor a
 * temporary file.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { buildImage } from "../../src/builder/build.js";
import { forgetMergedTrees } from "../../src/layer/merged-tree.js";
import { runGantry } from "../helpers/gantry.js";
import { REPO_ROOT } from "../helpers/paths.js";
import { tmpDir } from "../helpers/tmp.js";
import { listTar } from "../helpers/archive.js";

const BASE = `oci:${join(REPO_ROOT, "test/fixtures/formats/oci-umoci")}:app`;

async function files(root: string, content: Record<string, string>): Promise<void> {
  for (const [rel, text] of Object.entries(content)) {
    await mkdir(join(root, rel, ".."), { recursive: true });
    await writeFile(join(root, rel), text);
  }
}

const EPOCH = { SOURCE_DATE_EPOCH: "1700000000" };

/**
 * Builds the spec to the file `out` (in this process, to see its progress) and to standard
 * output (the command line, with no cache); returns both archives.
 */
async function bothWays(dir: string, out: string, cache: string | undefined): Promise<{ file: Buffer; stdout: Buffer }> {
  const messages: string[] = [];
  forgetMergedTrees();
  await buildImage({
    spec: join(dir, "spec.json"), output: join(dir, out), env: EPOCH,
    ...(cache === undefined ? { noCache: true } : { cacheDir: join(dir, cache) }),
    onProgress: (e) => { messages.push(e.message); },
  });
  assert.ok(messages.some((m) => /^writing .* around the layers packed into it$/.test(m)), `the new layers were packed into the archive: ${[...new Set(messages)].join(" | ")}`);
  const toStdout = await runGantry(["build", join(dir, "spec.json"), "-o", "-", "--quiet", "--no-cache"], { env: EPOCH });
  assert.equal(toStdout.code, 0, toStdout.stderr.toString());
  return { file: await readFile(join(dir, out)), stdout: toStdout.stdout };
}

/** The layer files docker's manifest.json lists, read from the archive's bytes. */
function manifestLayers(archive: Buffer): string[] {
  const manifest = JSON.parse(archive.toString("latin1").match(/\[\{"Config".*?\}\]/)![0]) as Array<{ Layers: string[] }>;
  return manifest[0]!.Layers;
}

async function setUp(t: TestContext, layers: unknown[]): Promise<string> {
  const dir = await tmpDir(t);
  await files(dir, { "deps/lib/a.js": "a\n".repeat(5000), "deps/lib/b.js": "b\n", "app/index.js": "console.log(1);\n", "same/x": "x\n" });
  await writeFile(join(dir, "spec.json"), JSON.stringify({ name: "inplace", tag: "1", fromImage: BASE, layers }));
  return dir;
}

const LAYERS = [
  { copyToRoot: [{ from: "./deps", to: "/opt/deps" }] },
  { copyToRoot: [{ from: "./same", to: "/srv/one" }] },
  { copyToRoot: [{ from: "./app", to: "/srv/app" }] },
];

test("an archive built in place is the one written to standard output, with no cache and with one", async (t) => {
  const dir = await setUp(t, LAYERS);
  const cold = await bothWays(dir, "cold.tar", undefined);
  assert.ok(cold.file.equals(cold.stdout), "built with no cache");
  const first = await bothWays(dir, "first.tar", "cache");
  assert.ok(first.file.equals(first.stdout), "the first build with a cache");
  assert.ok(first.file.equals(cold.file));
  // Only the top layer changes: the layers below come from the cache, the top one is packed in place.
  await writeFile(join(dir, "app/index.js"), "console.log(2);\n");
  const edit = await bothWays(dir, "edit.tar", "cache");
  assert.ok(edit.file.equals(edit.stdout), "an edit: cached layers below, a new one on top");
  assert.ok(!edit.file.equals(first.file));
  // The layers come first in the archive, in image order, after the two directories.
  const names = (await listTar(join(dir, "edit.tar"))).map((e) => e.path.replace(/\/$/, ""));
  assert.deepEqual(names.slice(0, 2), ["blobs", "blobs/sha256"]);
  const layers = manifestLayers(edit.file);
  assert.deepEqual(names.slice(2, 2 + layers.length), layers);
  assert.deepEqual((await readdir(dir)).filter((n) => n.includes(".gantry-")), [], "no temporary file is left beside the archives");
});

test("a layer the image holds twice is in the archive once, as on standard output", async (t) => {
  // The second and third layers add nothing to the first: both are the same empty layer.
  const dir = await setUp(t, [LAYERS[0], LAYERS[0], LAYERS[0], LAYERS[2]]);
  const twice = await bothWays(dir, "twice.tar", undefined);
  assert.ok(twice.file.equals(twice.stdout));
  const layers = manifestLayers(twice.file);
  assert.equal(layers.length, 6);
  assert.equal(layers[3], layers[4], "the image holds one blob twice");
  const withCache = await bothWays(dir, "twice-cached.tar", "cache");
  assert.ok(withCache.file.equals(twice.file));
});

test("a build that fails after a layer was packed in place leaves neither the destination nor a temporary file", async (t) => {
  const dir = await setUp(t, LAYERS);
  const dest = join(dir, "out.tar");
  await writeFile(dest, "the archive from before");
  // The third layer's source holds a name no layer may hold: the first two are packed by then.
  await writeFile(join(dir, "app/.wh.gone"), "");
  for (const flags of [["--no-cache"], []]) {
    const r = await runGantry(["build", join(dir, "spec.json"), "-o", dest, ...flags], { env: { GANTRY_CACHE: join(dir, "cache") } });
    assert.equal(r.code, 1);
    assert.match(r.stderr.toString(), /^gantry: .*\.wh\.gone.*reserve/m);
    assert.equal(await readFile(dest, "utf8"), "the archive from before", "the destination is untouched");
    assert.deepEqual((await readdir(dir)).filter((n) => n.includes(".gantry-")), [], "and no temporary file is left");
  }
  await rm(join(dir, "app/.wh.gone"));
});
