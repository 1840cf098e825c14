/**
 * Source snapshots (cache/source-snapshot.ts) and lookup journals (layer/below-tree.ts): the
 * two shortcuts of a rebuild. A snapshot gives an unchanged layer's key from an lstat walk
 * alone; it must miss on any change a full key would see, never be recorded while a change
 * could still hide in the clock's tick, and a damaged record must be a miss. A journal
 * answers a comparison with the tree below without reading it; the layer it gives must be
 * the one a build without any cache makes.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmod, lstat, mkdir, readFile, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { buildImage, type BuildOptions, type BuildResult } from "../../src/builder/build.js";
import type { ImageSpecInput } from "../../src/builder/spec-schema.js";
import { forgetMergedTrees } from "../../src/layer/merged-tree.js";
import { LayerFactsIndex } from "../../src/cache/layer-facts.js";
import { LookupJournals } from "../../src/cache/lookup-journal.js";
import { SnapshotHasher, snapshotOf } from "../../src/cache/source-snapshot.js";
import { statSources } from "../../src/layer/sources.js";
import type { LookupAnswers } from "../../src/layer/below-tree.js";
import type { TreeNode } from "../../src/layer/tree.js";
import { sha256 } from "../../src/model/digest.js";
import { REPO_ROOT } from "../helpers/paths.js";
import { settle } from "../helpers/settle.js";
import { tmpDir } from "../helpers/tmp.js";
import { fileInTopLayer } from "../helpers/archive.js";

const UMOCI_LAYOUT = join(REPO_ROOT, "test/fixtures/formats/oci-umoci");
const SNAPSHOT_HIT = /unchanged: sha256:[0-9a-f]{64} from the cache \(its sources as the last build saw them\)/;

interface Built extends BuildResult { messages: string[] }

async function build(dir: string, spec: Partial<ImageSpecInput>, out: string, extra: Partial<BuildOptions> = {}): Promise<Built> {
  const messages: string[] = [];
  // Each build as a new process would have it: nothing remembered in memory.
  forgetMergedTrees();
  const result = await buildImage({
    spec: { name: "snap", tag: "1", created: "2024-01-02T03:04:05Z", ...spec } as ImageSpecInput,
    specDir: dir, output: join(dir, out), cacheDir: join(dir, "cache"), env: {},
    onProgress: (e) => messages.push(e.message),
    ...extra,
  });
  return { ...result, messages };
}

async function files(root: string, content: Record<string, string>): Promise<void> {
  for (const [rel, text] of Object.entries(content)) {
    await mkdir(join(root, rel, ".."), { recursive: true });
    await writeFile(join(root, rel), text);
  }
}

const newLayers = (r: BuildResult): boolean[] => r.layers.filter((l) => !l.base).map((l) => l.cached);
const snapshotHits = (r: Built): number => r.messages.filter((m) => SNAPSHOT_HIT.test(m)).length;

async function recorded(dir: string): Promise<string[]> {
  return readdir(join(dir, "cache/snapshots")).catch(() => []);
}

async function setUp(t: TestContext): Promise<string> {
  const dir = await tmpDir(t);
  await files(join(dir, "root"), { "app/a.txt": "alpha\n", "app/deep/b.txt": "bravo\n", "etc/c.conf": "c = 1\n" });
  await symlink("a.txt", join(dir, "root/app/link"));
  return dir;
}

test("a snapshot is recorded only once no source is within the clock's tick, and then gives the key", async (t) => {
  const dir = await setUp(t);
  // Written just now: a change within the same tick would not show, so nothing is recorded.
  const racy = await build(dir, { copyToRoot: "./root" }, "1.tar");
  assert.deepEqual(newLayers(racy), [false]);
  assert.deepEqual(await recorded(dir), [], "no snapshot of sources changed within the racy window");
  await settle(dir);
  const full = await build(dir, { copyToRoot: "./root" }, "2.tar");
  assert.deepEqual(newLayers(full), [true]);
  assert.equal(snapshotHits(full), 0, "the key was made by a full walk");
  assert.equal((await recorded(dir)).length, 1, "and its snapshot recorded");
  const quick = await build(dir, { copyToRoot: "./root" }, "3.tar");
  assert.equal(snapshotHits(quick), 1, `the snapshot gave the key: ${quick.messages.join(" | ")}`);
  assert.deepEqual(await readFile(join(dir, "3.tar")), await readFile(join(dir, "1.tar")));
});

test("every kind of change misses the snapshot, and the layer is packed again with it", async (t) => {
  const dir = await setUp(t);
  const changes: Array<[string, () => Promise<void>, (archive: string) => void]> = [
    ["same size, mtime restored", async () => {
      const file = join(dir, "root/app/a.txt");
      execFileSync("touch", ["-r", file, join(dir, "times")]);
      await writeFile(file, "ALPHA\n");
      execFileSync("touch", ["-r", join(dir, "times"), file]);
    }, (a) => assert.equal(fileInTopLayer(a, "app/a.txt"), "ALPHA\n")],
    ["a file added deep down", async () => writeFile(join(dir, "root/app/deep/new.txt"), "new\n"),
      (a) => assert.equal(fileInTopLayer(a, "app/deep/new.txt"), "new\n")],
    ["a mode changed", async () => chmod(join(dir, "root/etc/c.conf"), 0o600), () => {}],
    ["a symlink pointed elsewhere", async () => {
      await rm(join(dir, "root/app/link"));
      await symlink("deep/b.txt", join(dir, "root/app/link"));
    }, () => {}],
    ["a file removed", async () => rm(join(dir, "root/etc/c.conf")), () => {}],
  ];
  await settle(dir);
  await build(dir, { copyToRoot: "./root" }, "start.tar");
  let previous = (await build(dir, { copyToRoot: "./root" }, "again.tar")).manifestDigest;
  for (const [what, change, check] of changes) {
    await change();
    await settle(dir);
    const after = await build(dir, { copyToRoot: "./root" }, `${what}.tar`);
    assert.equal(snapshotHits(after), 0, `${what}: the snapshot must miss`);
    assert.notEqual(after.manifestDigest, previous, `${what}: a new image`);
    check(join(dir, `${what}.tar`));
    // The same state built with no cache at all gives the same bytes.
    const honest = await build(dir, { copyToRoot: "./root" }, `${what}-honest.tar`, { noCache: true });
    assert.equal(after.manifestDigest, honest.manifestDigest, `${what}: the same image as a build without cache`);
    previous = after.manifestDigest;
  }
});

test("a damaged snapshot record is a miss, and the next build writes it again", async (t) => {
  const dir = await setUp(t);
  await settle(dir);
  await build(dir, { copyToRoot: "./root" }, "1.tar");
  const [name] = await recorded(dir);
  assert.ok(name !== undefined);
  const path = join(dir, "cache/snapshots", name);
  const good = await readFile(path, "utf8");
  for (const damaged of ["{\"snapshot\": \"", "not json", JSON.stringify({ snapshot: "0".repeat(64), key: "1".repeat(64) })]) {
    await writeFile(path, damaged);
    const r = await build(dir, { copyToRoot: "./root" }, "again.tar");
    assert.equal(snapshotHits(r), 0, `a damaged record (${damaged.slice(0, 20)}) is a miss`);
    assert.deepEqual(newLayers(r), [true], "the full key still finds the layer");
    assert.equal(await readFile(path, "utf8"), good, "and the record is written again");
  }
});

test("a snapshot made on several threads is the one a walk in order records, and sees a change in any segment", async (t) => {
  const dir = await tmpDir(t);
  const tree: Record<string, string> = { "single.txt": "s\n" };
  for (let i = 0; i < 12; i++) tree[`root/pkg${i}/lib/deep/f${i}.js`] = `${i}\n`;
  tree["root/top.txt"] = "top\n";
  await files(dir, tree);
  await symlink("top.txt", join(dir, "root/link"));
  // A file source, then a directory source: the roots are segments of their own, in order.
  const sources = [{ from: join(dir, "single.txt"), to: "/single.txt" }, { from: join(dir, "root"), to: "/" }];
  const inOrder = (): { digest: string; entries: number } => {
    const hasher = new SnapshotHasher();
    statSources(sources, hasher.visit);
    return { entries: hasher.entries, digest: hasher.digest() };
  };
  const recorded = inOrder();
  assert.equal(recorded.entries, 2 + 12 * 4 + 2, "every entry is visited once");
  const digests = async (): Promise<Array<string | undefined>> =>
    Promise.all([1, 2, 3].map(async (threads) => (await snapshotOf(sources, { threads }))?.digest));
  assert.deepEqual(await digests(), [recorded.digest, recorded.digest, recorded.digest], "1, 2 and 3 threads give the recorded snapshot");
  const snap = await snapshotOf(sources, { threads: 2 });
  assert.equal(snap?.entries, recorded.entries);
  // One byte deep inside one segment: every thread count sees it, and agrees with the walk in order.
  await writeFile(join(dir, "root/pkg7/lib/deep/f7.js"), "77\n");
  const changed = inOrder().digest;
  assert.notEqual(changed, recorded.digest);
  assert.deepEqual(await digests(), [changed, changed, changed]);
  // A name no layer may hold fails the walk: the snapshot is a miss, never a key.
  await writeFile(join(dir, "root/pkg3/.wh.gone"), "");
  assert.equal(await snapshotOf(sources, { threads: 2 }), undefined);
  assert.equal(await snapshotOf(sources, { threads: 1 }), undefined);
});

test("an edit on a base is compared through the lookup journal, and gives the layer a build without cache gives", async (t) => {
  const dir = await setUp(t);
  await files(join(dir, "app"), { "index.js": "console.log(1);\n" });
  const spec = {
    fromImage: `oci:${UMOCI_LAYOUT}:app`,
    layers: [{ copyToRoot: ["./root"] }, { copyToRoot: [{ from: "./app", to: "/srv/app" }] }],
  } as Partial<ImageSpecInput>;
  await settle(dir);
  await build(dir, spec, "1.tar");
  const journals = await readdir(join(dir, "cache/lookups"));
  assert.equal(journals.length, 2, "one journal per chain compared with: the base, and the base with the first layer");
  // Without the facts of the layers below, only the journal can answer.
  await rm(join(dir, "cache/facts"), { recursive: true });
  const facts = new LayerFactsIndex(join(dir, "cache/facts"));
  for (const [i, content] of ["console.log(2);\n", "console.log(33);\n"].entries()) {
    await writeFile(join(dir, "app/index.js"), content);
    await settle(dir);
    const edited = await build(dir, spec, `edit-${i}.tar`);
    assert.deepEqual(newLayers(edited), [true, false]);
    for (const below of edited.layers.slice(0, -1)) {
      await assert.rejects(lstat(facts.pathOf(below.diffId)), { code: "ENOENT" }, `no layer below was read (${below.diffId})`);
    }
    const honest = await build(dir, spec, `honest-${i}.tar`, { noCache: true });
    assert.equal(edited.manifestDigest, honest.manifestDigest);
    assert.deepEqual(await readFile(join(dir, `edit-${i}.tar`)), await readFile(join(dir, `honest-${i}.tar`)));
  }
  // A path the journal has never been asked about sends the comparison to the whole tree.
  await writeFile(join(dir, "app/extra.js"), "// new\n");
  await settle(dir);
  const grown = await build(dir, spec, "grown.tar");
  const honest = await build(dir, spec, "grown-honest.tar", { noCache: true });
  assert.equal(grown.manifestDigest, honest.manifestDigest);
  await lstat(facts.pathOf(grown.layers.at(-2)!.diffId)); // the whole tree was read, and its facts kept
});

test("a lookup journal keeps every kind of answer, and a damaged one is a miss", async (t) => {
  const dir = await tmpDir(t);
  const journals = new LookupJournals(join(dir, "lookups"));
  const chain = [sha256("layer one"), sha256("layer two")];
  const answers: LookupAnswers = new Map<string, TreeNode | string | boolean | null>([
    ["g\0etc/passwd", { type: "file", mode: 0o644, uid: 0, gid: 0, size: 12, mtime: 1, contentDigest: sha256("x"), layerIndex: 1 }],
    ["g\0missing", null],
    ["r\0lib/x", "usr/lib/x"],
    ["l\0lib", true],
  ]);
  await journals.save(chain, answers);
  assert.deepEqual(await journals.load(chain), answers);
  assert.equal(await journals.load([chain[1]!, chain[0]!]), undefined, "another chain has its own journal");
  const good = await readFile(journals.pathOf(chain));
  const flipped = Buffer.from(good);
  flipped[flipped.length - 5] = flipped[flipped.length - 5]! ^ 0x01;
  for (const damaged of [flipped, good.subarray(0, good.length - 3), Buffer.from("{}\n[]")]) {
    await writeFile(journals.pathOf(chain), damaged);
    assert.equal(await journals.load(chain), undefined);
  }
});
