/**
 * skopeo's `dir:` layout, both ways. What `skopeo copy ... dir:D` writes, gantry reads with
 * skopeo's digest (as `dir:D` and as the bare path D) and copies into a layout unchanged;
 * what `gantry copy ... dir:F` writes, skopeo reads and copies unchanged, and it is the very
 * directory skopeo writes for the same image: the same file names (blobs by hex digest,
 * an index's manifests as HEX.manifest.json, `version`) and the same bytes. With --all an
 * index goes dir: -> oci: -> dir: -> oci: between the two tools and keeps its digest.
 *
 * Fixtures: two umoci images (`init/new/insert/config`, amd64 and arm64) in a temp layout;
 * the image manifest is re-written indented and the index is written by hand, indented, so
 * a writer that re-serialises either changes its digest.
 */
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  addHandIndex, addPrettyManifest, digestLine, digestOf, gantryInspect, gantryInspectText, gantryOk,
  skopeoCopy, skopeoInspect, skopeoRaw, umociImage, type Descriptor,
} from "../helpers/faithful.js";
import { fileTmpDir, tmpDir } from "../helpers/tmp.js";
import { peerTest, requireTools } from "../helpers/tools.js";

const shared = fileTmpDir("gantry-faithful-dir-");

interface Fixture {
  layout: string;
  /** The amd64 image with its manifest indented, ref "pretty". */
  pretty: Descriptor & { bytes: Buffer };
  /** A hand-written index over both images, ref "multi". */
  multi: Descriptor & { bytes: Buffer };
}

let fixture: Promise<Fixture> | undefined;
function layout(): Promise<Fixture> {
  requireTools("umoci", "skopeo");
  fixture ??= (async () => {
    const dir = join(await shared(), "layout");
    const amd64 = await umociImage(dir, "amd64", { architecture: "amd64", marker: "dir amd64" });
    const arm64 = await umociImage(dir, "arm64", { architecture: "arm64", marker: "dir arm64" });
    const pretty = await addPrettyManifest(dir, "amd64", "pretty");
    const multi = await addHandIndex(dir, "multi", [
      { ...amd64, platform: { os: "linux", architecture: "amd64" } },
      { ...arm64, platform: { os: "linux", architecture: "arm64" } },
    ]);
    return { layout: dir, pretty, multi };
  })();
  return fixture;
}

/** Every file of a dir: layout, by name. */
async function filesOf(dir: string): Promise<Map<string, Buffer>> {
  const names = (await readdir(dir)).sort();
  return new Map(await Promise.all(names.map(async (n) => [n, await readFile(join(dir, n))] as const)));
}

/** Two dir: layouts hold the same files with the same bytes. */
async function assertSameDirectory(ours: string, theirs: string): Promise<void> {
  const a = await filesOf(ours);
  const b = await filesOf(theirs);
  assert.deepEqual([...a.keys()], [...b.keys()], "the same file names as skopeo's dir:");
  for (const [name, bytes] of b) assert.ok(a.get(name)?.equals(bytes), `${name}: the same bytes as skopeo's`);
}

peerTest("skopeo's dir: is read with skopeo's digest, as dir:D and as the bare path, and copied unchanged", async (t) => {
  const { layout: src, pretty } = await layout();
  const work = await tmpDir(t);
  const d = join(work, "skopeo-dir");
  await skopeoCopy(`oci:${src}:pretty`, `dir:${d}`);
  const manifest = await readFile(join(d, "manifest.json"));
  assert.ok(manifest.equals(pretty.bytes), "the fixture: skopeo kept the indented manifest");

  for (const spelled of [`dir:${d}`, d]) {
    assert.equal(digestLine(await gantryInspectText(spelled)), pretty.digest, `gantry inspect ${spelled}`);
    assert.equal((await gantryInspect(spelled)).Digest, pretty.digest);
  }
  assert.ok((await gantryOk(["inspect", "--raw", `dir:${d}`])).equals(manifest), "--raw prints manifest.json");

  await gantryOk(["copy", `dir:${d}`, `oci:${join(work, "e")}:r`]);
  assert.equal(digestOf(await skopeoRaw(`oci:${join(work, "e")}:r`)), pretty.digest, "dir: -> oci: keeps the digest");
});

peerTest("gantry's dir: is skopeo's dir:, file for file; skopeo reads it and copies it unchanged", async (t) => {
  const { layout: src, pretty } = await layout();
  const work = await tmpDir(t);
  const ours = join(work, "gantry-dir");
  await gantryOk(["copy", `oci:${src}:pretty`, `dir:${ours}`]);
  assert.equal((await readFile(join(ours, "version"), "utf8")), "Directory Transport Version: 1.1\n");
  assert.equal((await skopeoInspect(`dir:${ours}`)).Digest, pretty.digest, "skopeo inspect dir:");

  await skopeoCopy(`dir:${ours}`, `oci:${join(work, "g")}:r`);
  assert.ok((await skopeoRaw(`oci:${join(work, "g")}:r`)).equals(pretty.bytes), "skopeo copies it on with the indented bytes");

  const theirs = join(work, "skopeo-dir");
  await skopeoCopy(`oci:${src}:pretty`, `dir:${theirs}`);
  await assertSameDirectory(ours, theirs);
});

peerTest("with --all an index round-trips skopeo dir: -> gantry oci: -> gantry dir: -> skopeo oci:, digest kept", async (t) => {
  const { layout: src, multi } = await layout();
  const work = await tmpDir(t);
  const skopeoDir = join(work, "skopeo-dir");
  await skopeoCopy("--all", `oci:${src}:multi`, `dir:${skopeoDir}`);

  const seen = await gantryInspect(skopeoDir);
  assert.equal(seen.Digest, multi.digest, "gantry reads skopeo's dir: index (bare path) with its digest");
  assert.deepEqual(seen.Manifests?.map((m) => m.Platform), ["linux/amd64", "linux/arm64"]);

  const layoutCopy = join(work, "gantry-oci");
  await gantryOk(["copy", "--all", `dir:${skopeoDir}`, `oci:${layoutCopy}:r`]);
  assert.ok((await skopeoRaw(`oci:${layoutCopy}:r`)).equals(multi.bytes), "dir: -> oci: keeps the index's bytes");

  const gantryDir = join(work, "gantry-dir");
  await gantryOk(["copy", "--all", `oci:${layoutCopy}:r`, `dir:${gantryDir}`]);
  await assertSameDirectory(gantryDir, skopeoDir);

  const back = join(work, "skopeo-oci");
  await skopeoCopy("--all", `dir:${gantryDir}`, `oci:${back}:r`);
  assert.equal(digestOf(await skopeoRaw(`oci:${back}:r`)), multi.digest, "skopeo copies gantry's dir: on with the index's digest");
  assert.equal((await skopeoInspect("--override-arch", "arm64", `oci:${back}:r`)).Architecture, "arm64");
});
