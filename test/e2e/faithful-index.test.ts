/**
 * An image index is kept as it is written. The fixture's index is JSON written by hand
 * over two umoci images (amd64 and arm64), indented and ending in a newline, so any writer
 * that re-serialises it changes its digest. `gantry inspect` must list both platforms and
 * the index's digest; `--platform` must show one image; `gantry copy --all` into another
 * layout and into a loopback registry must keep the index's digest and bytes (skopeo reads
 * them back, and reads the arm64 image with --override-arch); without --all one platform's
 * image is copied with its manifest unchanged; a docker-archive, which cannot hold an
 * index, is refused. An index whose one child names no platform (as go-containerregistry's
 * test indexes have) gives that child for the host's platform or an asked one.
 *
 * Fixtures: `umoci init/new/insert/config` into a temp layout; the index blobs and their
 * index.json entries are written here.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { runGantry } from "../helpers/gantry.js";
import {
  addHandIndex, assertOneErrorLine, blobFile, digestLine, digestOf, gantryInspect, gantryInspectText, gantryOk, hexOf,
  layoutRefs, readBlob, registryDigest, sharedRegistry, skopeoCopy, skopeoInspect, skopeoRaw, umociImage, type Descriptor,
} from "../helpers/faithful.js";
import { fileTmpDir, tmpDir } from "../helpers/tmp.js";
import { peerTest, requireTools } from "../helpers/tools.js";

const registry = sharedRegistry();
const shared = fileTmpDir("gantry-faithful-index-");

interface Fixture {
  layout: string;
  amd64: Descriptor;
  arm64: Descriptor;
  /** The two-platform index, ref "multi". */
  multi: Descriptor & { bytes: Buffer };
  /** An index whose one child (the amd64 image) names no platform, ref "unlabelled". */
  unlabelled: Descriptor & { bytes: Buffer };
}

let fixture: Promise<Fixture> | undefined;
function indexes(): Promise<Fixture> {
  requireTools("umoci", "skopeo");
  fixture ??= (async () => {
    const layout = join(await shared(), "layout");
    const amd64 = await umociImage(layout, "amd64", { architecture: "amd64", marker: "index amd64" });
    const arm64 = await umociImage(layout, "arm64", { architecture: "arm64", marker: "index arm64" });
    const multi = await addHandIndex(layout, "multi", [
      { ...amd64, platform: { os: "linux", architecture: "amd64" } },
      { ...arm64, platform: { os: "linux", architecture: "arm64" } },
    ]);
    const unlabelled = await addHandIndex(layout, "unlabelled", [amd64]);
    return { layout, amd64, arm64, multi, unlabelled };
  })();
  return fixture;
}

/** skopeo reads REF's top manifest as exactly BYTES (so with their digest). */
async function assertSkopeoReadsBytes(ref: string, bytes: Buffer, ...flags: string[]): Promise<void> {
  const raw = await skopeoRaw(...flags, ref);
  assert.equal(digestOf(raw), digestOf(bytes), `skopeo reads ${ref} with the index's digest`);
  assert.ok(raw.equals(bytes), `skopeo reads the hand-written bytes from ${ref}`);
}

/** skopeo's view of REF's arm64 image is the fixture's arm64 image (same layers, same architecture). */
async function assertArm64Readable(ref: string, layout: string, ...flags: string[]): Promise<void> {
  const arm = await skopeoInspect(...flags, "--override-arch", "arm64", ref);
  assert.equal(arm.Architecture, "arm64");
  assert.deepEqual(arm.Layers, (await skopeoInspect(`oci:${layout}:arm64`)).Layers, `skopeo finds the arm64 image in ${ref}`);
}

peerTest("gantry inspect lists both platforms and the hand-written index's digest (text and --json)", async () => {
  const { layout, amd64, arm64, multi } = await indexes();
  const ref = `oci:${layout}:multi`;
  const text = await gantryInspectText(ref);
  assert.equal(digestLine(text), multi.digest);
  assert.match(text, new RegExp(`^\\s+linux/amd64\\s+${amd64.digest}\\s`, "m"));
  assert.match(text, new RegExp(`^\\s+linux/arm64\\s+${arm64.digest}\\s`, "m"));

  const json = await gantryInspect(ref);
  assert.equal(json.Digest, multi.digest);
  assert.deepEqual(json.Manifests?.map((m) => [m.Platform, m.Digest]), [["linux/amd64", amd64.digest], ["linux/arm64", arm64.digest]]);

  const raw = await gantryOk(["inspect", "--raw", ref]);
  assert.ok(raw.equals(multi.bytes), "--raw prints the index as written, indentation and newline included");
});

peerTest("--platform linux/arm64 shows the arm64 image, its manifest digest as stored", async () => {
  const { layout, arm64 } = await indexes();
  const json = await gantryInspect("--platform", "linux/arm64", `oci:${layout}:multi`);
  assert.equal(json.Digest, arm64.digest);
  assert.equal(json.Architecture, "arm64");
  assert.deepEqual(json.Layers, (await skopeoInspect(`oci:${layout}:arm64`)).Layers);
  const raw = await gantryOk(["inspect", "--raw", "--platform", "linux/arm64", `oci:${layout}:multi`]);
  assert.ok(raw.equals(await readBlob(layout, arm64.digest)), "--raw --platform prints umoci's manifest bytes");
});

peerTest("gantry copy --all into another layout keeps the index's digest; skopeo reads it and its arm64 image", async (t) => {
  const { layout, multi } = await indexes();
  const out = join(await tmpDir(t), "copy");
  await gantryOk(["copy", "--all", `oci:${layout}:multi`, `oci:${out}:multi`]);
  await assertSkopeoReadsBytes(`oci:${out}:multi`, multi.bytes);
  await assertArm64Readable(`oci:${out}:multi`, layout);
  assert.equal((await gantryInspect(`oci:${out}:multi`)).Digest, multi.digest, "gantry reads its copy back with the same digest");
});

peerTest("gantry copy --all into a registry keeps the index's digest; skopeo reads it and its arm64 image", async () => {
  const { layout, multi } = await indexes();
  const { host } = await registry();
  await gantryOk(["copy", "--all", `oci:${layout}:multi`, `docker://${host}/multi:1`]);
  assert.equal(await registryDigest(host, "multi", "1"), multi.digest, "the registry's Docker-Content-Digest");
  await assertSkopeoReadsBytes(`docker://${host}/multi:1`, multi.bytes, "--tls-verify=false");
  await assertArm64Readable(`docker://${host}/multi:1`, layout, "--tls-verify=false");
});

peerTest("gantry copy --platform linux/arm64 (no --all) writes just the arm64 image, its manifest unchanged", async (t) => {
  const { layout, amd64, arm64, multi } = await indexes();
  const out = join(await tmpDir(t), "arm");
  await gantryOk(["copy", "--platform", "linux/arm64", `oci:${layout}:multi`, `oci:${out}:x`]);
  assert.deepEqual(await layoutRefs(out), ["x"]);
  assert.equal(digestOf(await skopeoRaw(`oci:${out}:x`)), arm64.digest);
  assert.ok((await readBlob(out, arm64.digest)).equals(await readBlob(layout, arm64.digest)), "umoci's manifest bytes, copied");
  const arm = await skopeoInspect(`oci:${out}:x`);
  assert.equal(arm.Architecture, "arm64");
  const blobs = await readdir(join(out, "blobs", "sha256"));
  const amd64Layers = (await skopeoInspect(`oci:${layout}:amd64`)).Layers.map(hexOf);
  for (const absent of [amd64.digest, ...amd64Layers].map(hexOf)) assert.ok(!blobs.includes(absent), `${absent} of the amd64 image is not written`);
  assert.ok(!existsSync(blobFile(out, multi.digest)), "the index is not written");
});

peerTest("copy --all to a docker-archive is refused: exit 1, one gantry: line, nothing written", async (t) => {
  const { layout } = await indexes();
  const out = join(await tmpDir(t), "multi.tar");
  const r = await runGantry(["copy", "--all", `oci:${layout}:multi`, `docker-archive:${out}`]);
  const line = assertOneErrorLine(r, "copy --all to docker-archive:");
  assert.match(line, /docker-archive/);
  assert.ok(!existsSync(out), "no archive is left behind");
});

peerTest("an index child with no platform is the image for linux/amd64, for the host's platform, and for skopeo", async (t) => {
  const { layout, amd64, unlabelled } = await indexes();
  const ref = `oci:${layout}:unlabelled`;
  const json = await gantryInspect(ref);
  assert.equal(json.Digest, unlabelled.digest);
  assert.deepEqual(json.Manifests?.map((m) => [m.Platform, m.Digest]), [[null, amd64.digest]]);

  assert.equal((await gantryInspect("--platform", "linux/amd64", ref)).Digest, amd64.digest, "--platform linux/amd64 takes it");
  const work = await tmpDir(t);
  await gantryOk(["copy", ref, `oci:${join(work, "ours")}:r`]);
  assert.equal(digestOf(await skopeoRaw(`oci:${join(work, "ours")}:r`)), amd64.digest, "copy with the default platform takes it");
  const amd64Config = (JSON.parse((await readBlob(layout, amd64.digest)).toString("utf8")) as { config: { digest: string } }).config.digest;
  assert.equal(digestOf(await gantryOk(["inspect", "--config", ref])), amd64Config, "inspect --config (the host's platform) prints its config");

  await skopeoCopy(ref, `oci:${join(work, "theirs")}:r`);
  assert.equal(digestOf(await skopeoRaw(`oci:${join(work, "theirs")}:r`)), amd64.digest, "skopeo takes the same child");
});
