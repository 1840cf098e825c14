/**
 * `gantry merge`: images from several archives (skopeo's busybox base, and both images
 * of the two-image archive, which share their lower layer) in one archive. skopeo must
 * find every image by each of its names (`docker-archive:OUT:NAME:TAG`) with the
 * source's layers; every blob must be stored once; `docker load` must bring in every
 * tag, and the images must run.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fixtureBases } from "../helpers/bases.js";
import { sharedDockerd } from "../helpers/dockerd.js";
import { runGantry } from "../helpers/gantry.js";
import { archiveManifest, tarMembers } from "../helpers/archive.js";
import { fileTmpDir } from "../helpers/tmp.js";
import { peerTest, skopeoJson } from "../helpers/tools.js";

const bases = fixtureBases();
const dockerd = sharedDockerd();
const shared = fileTmpDir("gantry-merge-");

interface Inspected { Layers: string[]; Digest: string }

let merged: Promise<{ out: string; busybox: string; multi: string }> | undefined;
function theMerge(): Promise<{ out: string; busybox: string; multi: string }> {
  merged ??= (async () => {
    const busybox = (await bases.busyboxArchive()).ref;
    const multi = (await bases.twoImages()).path;
    const out = join(await shared(), "merged.tar");
    const r = await runGantry(["merge", busybox, `docker-archive:${multi}:multi:one`, `docker-archive:${multi}:multi:two`, "-o", out]);
    assert.equal(r.code, 0, r.stderr);
    return { out, busybox, multi };
  })();
  return merged;
}

const NAMES: Array<{ name: string; source: (m: { busybox: string; multi: string }) => string }> = [
  { name: "gantry-test/busybox:1", source: (m) => `docker-archive:${m.busybox}` },
  { name: "multi:one", source: (m) => `docker-archive:${m.multi}:multi:one` },
  { name: "multi:uno", source: (m) => `docker-archive:${m.multi}:multi:one` },
  { name: "multi:two", source: (m) => `docker-archive:${m.multi}:multi:two` },
];

peerTest("skopeo finds every image by each of its names, with the source's layers", async () => {
  const m = await theMerge();
  for (const { name, source } of NAMES) {
    const ours = await skopeoJson<Inspected>("inspect", `docker-archive:${m.out}:${name}`);
    const theirs = await skopeoJson<Inspected>("inspect", source(m));
    assert.deepEqual(ours.Layers, theirs.Layers, `${name}: the same layers`);
  }
});

peerTest("each blob is stored once, and every RepoTag is kept", async () => {
  const { out } = await theMerge();
  const manifest = await archiveManifest(out);
  assert.equal(manifest.length, 3);
  const tags = manifest.flatMap((e) => e.RepoTags ?? []).sort();
  assert.deepEqual(tags, ["gantry-test/busybox:1", "multi:one", "multi:two", "multi:uno"], "as docker save spells them");
  const layers = manifest.flatMap((e) => e.Layers);
  assert.ok(layers.length > new Set(layers).size, "the two multi images share a layer");
  const blobs = (await tarMembers(out)).filter((n) => n.startsWith("blobs/sha256/") && n !== "blobs/sha256/");
  assert.equal(new Set(blobs).size, blobs.length, "no member appears twice");
  for (const layer of new Set(layers)) assert.ok(blobs.includes(layer), `${layer} is stored`);
});

peerTest("docker load brings in every tag, and the images run", async () => {
  const { out } = await theMerge();
  const daemon = await dockerd.get();
  await daemon.docker(["load", "-i", out]);
  const listed = (await daemon.docker(["images", "--format", "{{.Repository}}:{{.Tag}}"])).stdout.toString().split("\n");
  for (const tag of ["gantry-test/busybox:1", "multi:one", "multi:uno", "multi:two"]) assert.ok(listed.includes(tag), `${tag} in ${listed.join(" ")}`);
  assert.equal(await daemon.runImage("multi:two", ["cat", "/etc/which"]), "two\n");
  assert.equal(await daemon.runImage("multi:uno", ["cat", "/etc/which"]), "one\n");
  assert.equal(await daemon.runImage("gantry-test/busybox:1", ["cat", "/etc/base.txt"]), "from the base\n");
});
