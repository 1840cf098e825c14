/**
 * maxLayers: units found in the tree (packages), bins that keep a unit's layer when others
 * change, and what a build makes of them: the total count nixpkgs gives, a change to one
 * package touching few layers and few bytes, every file in exactly one layer.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { link, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { buildImage, type BuildResult } from "../../src/builder/build.js";
import type { ImageSpecInput } from "../../src/builder/spec-schema.js";
import { assignBins, findUnits, type Unit } from "../../src/builder/units.js";
import { walkSources } from "../../src/layer/sources.js";
import { REPO_ROOT } from "../helpers/paths.js";
import { settle } from "../helpers/settle.js";
import { tmpDir } from "../helpers/tmp.js";

const UMOCI_LAYOUT = join(REPO_ROOT, "test/fixtures/formats/oci-umoci");

async function files(root: string, tree: Record<string, string>): Promise<void> {
  for (const [rel, content] of Object.entries(tree)) {
    await mkdir(join(root, rel, ".."), { recursive: true });
    await writeFile(join(root, rel), content);
  }
}

test("units: npm packages (scoped, with their own node_modules), Python packages by name, dpkg's lists, else top-level entries", async (t) => {
  const dir = await tmpDir(t);
  await files(join(dir, "src"), {
    "app/node_modules/lodash/index.js": "x",
    "app/node_modules/lodash/package.json": "{}",
    "app/node_modules/@mui/material/index.js": "xx",
    "app/node_modules/express/node_modules/debug/index.js": "xxx",
    "app/node_modules/.package-lock.json": "{}",
    "usr/lib/python3/site-packages/yaml/__init__.py": "y",
    "usr/lib/python3/site-packages/PyYAML-6.0.dist-info/RECORD": "r",
    "usr/lib/python3/site-packages/six.py": "s",
    "var/lib/dpkg/info/busybox.list": "/.\n/bin\n/bin/busybox\n",
    "bin/busybox": "bb",
    "etc/hostname": "h",
  });
  await link(join(dir, "src/app/node_modules/lodash/index.js"), join(dir, "src/app/node_modules/zz-link.js"));
  const units = findUnits(await walkSources([{ from: join(dir, "src"), to: "/" }]));
  const byName = new Map(units.map((u) => [u.name, u.paths]));
  assert.deepEqual(byName.get("app/node_modules/lodash"), ["app/node_modules/lodash/index.js", "app/node_modules/lodash/package.json", "app/node_modules/zz-link.js"], "a hard link stays with its file");
  assert.deepEqual(byName.get("app/node_modules/@mui/material"), ["app/node_modules/@mui/material/index.js"]);
  assert.deepEqual(byName.get("app/node_modules/express"), ["app/node_modules/express/node_modules/debug/index.js"]);
  assert.deepEqual(byName.get("app/node_modules/.package-lock.json"), ["app/node_modules/.package-lock.json"]);
  assert.deepEqual(byName.get("usr/lib/python3/site-packages/yaml"), ["usr/lib/python3/site-packages/yaml/__init__.py"]);
  assert.deepEqual(byName.get("usr/lib/python3/site-packages/pyyaml"), ["usr/lib/python3/site-packages/PyYAML-6.0.dist-info/RECORD"]);
  assert.deepEqual(byName.get("usr/lib/python3/site-packages/six"), ["usr/lib/python3/site-packages/six.py"]);
  assert.deepEqual(byName.get("dpkg:busybox"), ["bin/busybox", "var/lib/dpkg/info/busybox.list"]);
  assert.deepEqual(byName.get("etc"), ["etc/hostname"]);
  assert.deepEqual(units.map((u) => u.name), [...units.map((u) => u.name)].sort(), "in name order");
});

function unit(name: string, size: number): Unit {
  return { name, size, paths: [`${name}/f`] };
}

test("bins: a unit's bin follows its name; large units get their own; a change moves nothing else", () => {
  const units = Array.from({ length: 40 }, (_, i) => unit(`pkg-${String(i).padStart(2, "0")}`, 1000 + ((i * 7919) % 5000)));
  units.push(unit("huge", 400_000));
  const bins = assignBins(units, 8);
  assert.ok(bins.length <= 8);
  assert.deepEqual(bins[0]!.map((u) => u.name), ["huge"], "the unit larger than an even share has a layer of its own");
  assert.deepEqual(assignBins([...units].reverse(), 8).map((b) => b.map((u) => u.name)), bins.map((b) => b.map((u) => u.name)), "order-independent");
  // pkg-17 grows by 10%: it is the only unit that changes, and it stays where it was.
  const grown = units.map((u) => (u.name === "pkg-17" ? unit(u.name, u.size * 1.1) : u));
  const after = assignBins(grown, 8);
  const where = (b: Unit[][], name: string): number => b.findIndex((bin) => bin.some((u) => u.name === name));
  for (const u of units) assert.equal(where(after, u.name), where(bins, u.name), u.name);
  assert.deepEqual(assignBins(units, 1).map((b) => b.length), [41]);
  assert.deepEqual(assignBins([], 5), []);
});

/** The regular files of each new layer (GNU tar reads the archive), by layer. */
function layerFiles(archive: string, result: BuildResult, work: string): string[][] {
  const out = join(work, "x");
  execFileSync("bash", ["-c", `rm -rf ${out} && mkdir -p ${out} && tar -C ${out} -xf ${archive}`]);
  return result.layers.filter((l) => !l.base).map((l) => execFileSync("tar", ["-tvzf", join(out, "blobs/sha256", l.digest.slice(7))], { encoding: "utf8" })
    .split("\n").filter((line) => line.startsWith("-")).map((line) => line.split(/\s+/).pop()!));
}

async function packages(root: string, count: number, version: string, changed = -1): Promise<void> {
  for (let i = 0; i < count; i++) {
    const v = i === changed ? version : "1.0.0";
    await files(join(root, "node_modules", `pkg${i}`), {
      "package.json": JSON.stringify({ name: `pkg${i}`, version: v }),
      "index.js": `module.exports = "${v}";\n${"// padding\n".repeat(200 + ((i * 37) % 400))}`,
    });
  }
}

async function buildPackages(t: TestContext, dir: string, spec: Partial<ImageSpecInput>): Promise<BuildResult> {
  void t;
  await settle(dir);
  return buildImage({
    spec: { name: "units", tag: "1", created: "2024-01-02T03:04:05Z", copyToRoot: [{ from: "./app", to: "/app" }], ...spec } as ImageSpecInput,
    specDir: dir, output: join(dir, "out.tar"), cacheDir: join(dir, "cache"), env: {},
  });
}

test("maxLayers over 40 packages: between 4 and N layers, every file once, and a change to one package touches few layers", async (t) => {
  const dir = await tmpDir(t);
  await packages(join(dir, "app"), 40, "1.0.0");
  const first = await buildPackages(t, dir, { maxLayers: 8 });
  const news = first.layers.filter((l) => !l.base);
  assert.ok(news.length >= 4 && news.length <= 8, `${news.length} layers`);
  const perLayer = layerFiles(join(dir, "out.tar"), first, dir);
  const all = perLayer.flat();
  assert.equal(all.length, 80, "every file is in a layer");
  assert.equal(new Set(all).size, all.length, "and in one layer only");
  const again = await buildPackages(t, dir, { maxLayers: 8 });
  assert.deepEqual(again.layers.map((l) => l.digest), first.layers.map((l) => l.digest), "deterministic");

  await packages(join(dir, "app"), 40, "1.0.1", 23);
  const upgraded = await buildPackages(t, dir, { maxLayers: 8 });
  const before = new Set(first.layers.map((l) => l.digest));
  const changed = upgraded.layers.filter((l) => !before.has(l.digest));
  assert.ok(changed.length >= 1 && changed.length <= 2, `${changed.length} layers changed`);
  const total = upgraded.layers.reduce((n, l) => n + l.size, 0);
  const share = changed.reduce((n, l) => n + l.size, 0) / total;
  assert.ok(share <= 0.3, `the changed layers hold ${(share * 100).toFixed(0)}% of the bytes`);
});

test("maxLayers counts the base's layers, as nixpkgs does: a 2-layer base and maxLayers 4 give 4", async (t) => {
  const dir = await tmpDir(t);
  await packages(join(dir, "app"), 12, "1.0.0");
  const result = await buildPackages(t, dir, { fromImage: `oci:${UMOCI_LAYOUT}:app`, maxLayers: 4 });
  assert.equal(result.layers.filter((l) => l.base).length, 2);
  assert.equal(result.layers.length, 4);
  await assert.rejects(buildPackages(t, dir, { fromImage: `oci:${UMOCI_LAYOUT}:app`, maxLayers: 2 }), /"maxLayers" is 2, but the base has 2 layer/);
});
