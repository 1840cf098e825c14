/**
 * The ground the build tests stand on: the base images made by other tools are what
 * those tools (and dockerd, runc, podman) say they are, and the harness starts and
 * stops its peers cleanly. None of this runs gantry, so it holds before the CLI exists.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { archiveManifest, listLayer, tarMembers } from "../helpers/archive.js";
import { dockerSavedBase, fixtureBases } from "../helpers/bases.js";
import { sharedDockerd, startDockerd } from "../helpers/dockerd.js";
import { mountsUnder } from "../helpers/mounts.js";
import { sharedPodman } from "../helpers/podman.js";
import { tmpDir } from "../helpers/tmp.js";
import { peerTest, runcRun, skopeoJson, skopeo, umociUnpack, unpackWithPeers } from "../helpers/tools.js";

const bases = fixtureBases();
const dockerd = sharedDockerd();
const podman = sharedPodman();

interface SkopeoInspect { Layers: string[]; Env?: string[] }
interface ConfigJson { rootfs: { diff_ids: string[] }; config?: { Cmd?: string[]; Env?: string[] } }

peerTest("(a, d) umoci's layout and skopeo's docker-archive hold the same busybox image", async () => {
  const archive = await bases.busyboxArchive();
  const layout = await bases.busyboxLayout();
  const fromArchive = await skopeoJson<ConfigJson>("inspect", "--config", `docker-archive:${archive.ref}`);
  const fromLayout = await skopeoJson<ConfigJson>("inspect", "--config", layout.ref);
  assert.deepEqual(fromArchive.rootfs.diff_ids, fromLayout.rootfs.diff_ids);
  assert.equal(fromArchive.rootfs.diff_ids.length, 1);
  assert.deepEqual(fromArchive.config?.Cmd, ["/bin/sh", "-c", "echo base"]);
  // skopeo's docker-archive writer: uncompressed HEX.tar layers and legacy ID/layer.tar links.
  const [entry] = await archiveManifest(archive.ref);
  assert.deepEqual(entry?.RepoTags, ["docker.io/gantry-test/busybox:1"]);
  assert.match(entry?.Layers[0] ?? "", /^[0-9a-f]{64}\.tar$/);
  assert.ok((await tarMembers(archive.ref)).some((m) => /^[0-9a-f]{64}\/layer\.tar$/.test(m)));
});

peerTest("(a') the two-image archive yields a different image per tag", async () => {
  const { path } = await bases.twoImages();
  const one = await skopeoJson<SkopeoInspect>("inspect", `docker-archive:${path}:multi:one`);
  const uno = await skopeoJson<SkopeoInspect>("inspect", `docker-archive:${path}:multi:uno`);
  const two = await skopeoJson<SkopeoInspect>("inspect", `docker-archive:${path}:multi:two`);
  assert.deepEqual(uno.Layers, one.Layers, "--additional-tag names the same image");
  assert.equal(one.Layers.length, 1);
  assert.equal(two.Layers.length, 2);
  assert.equal(two.Layers[0], one.Layers[0], "image two is built on image one");
  await assert.rejects(skopeo("inspect", `docker-archive:${path}`), /expected 1 item, got 2/);
});

peerTest("(b) the merged-/usr base keeps /bin and /lib as symlinks into /usr", async (t) => {
  const base = await bases.mergedUsr();
  const scratch = await tmpDir(t);
  const [entry] = await archiveManifest(base.ref);
  const listing = await listLayer(base.ref, entry?.Layers[0] ?? "", scratch);
  const byPath = new Map(listing.map((e) => [e.path, e]));
  assert.equal(byPath.get("bin")?.linkTarget, "usr/bin");
  assert.equal(byPath.get("lib")?.linkTarget, "usr/lib");
  assert.equal(byPath.get("usr/bin/busybox")?.type, "-");
});

peerTest("(c) the whiteout base's upper layer deletes with .wh. entries, and umoci honours them", async (t) => {
  const base = await bases.whiteout();
  const scratch = await tmpDir(t);
  const [entry] = await archiveManifest(base.ref);
  assert.equal(entry?.Layers.length, 2);
  const upper = (await listLayer(base.ref, entry?.Layers[1] ?? "", scratch)).map((e) => e.path);
  assert.ok(upper.includes("etc/.wh.doomed.txt"), upper.join(" "));
  assert.ok(upper.includes("var/.wh.gone"), upper.join(" "));
  const { rootfs } = await unpackWithPeers(`docker-archive:${base.ref}`, scratch);
  for (const gone of base.deleted) assert.equal(existsSync(join(rootfs, gone)), false, gone);
  for (const [path, content] of Object.entries(base.files)) assert.equal(await readFile(join(rootfs, path), "utf8"), content);
});

peerTest("(f) skopeo reads the nix-2017 archive: ./sha256:HEX gzip layers, diff_ids uncompressed", async () => {
  const base = await bases.nix2017();
  const members = await tarMembers(base.ref);
  assert.ok(members.includes("./manifest.json"));
  assert.equal(members.filter((m) => /^\.\/sha256:[0-9a-f]{64}$/.test(m)).length, 2);
  const inspect = await skopeoJson<SkopeoInspect>("inspect", `docker-archive:${base.ref}`);
  const config = await skopeoJson<ConfigJson>("inspect", "--config", `docker-archive:${base.ref}`);
  // skopeo names docker-archive layers by diff_id, whatever their compression.
  assert.deepEqual(inspect.Layers, config.rootfs.diff_ids);
});

peerTest("runc runs the busybox bundle that umoci unpacks from the layout", async (t) => {
  const layout = await bases.busyboxLayout();
  const bundle = join(await tmpDir(t), "bundle");
  await umociUnpack(layout.ref.replace(/^oci:/, ""), bundle);
  assert.equal(await runcRun(bundle), "base\n");
});

peerTest("(e, f) dockerd loads the legacy and nix-2017 archives and runs them", async () => {
  const daemon = await dockerd.get();
  const legacy = await bases.legacy();
  const nix = await bases.nix2017();
  assert.equal((await tarMembers(legacy.ref)).includes("manifest.json"), false, "legacy archives have no manifest.json");
  await daemon.docker(["load", "-i", legacy.ref]);
  await daemon.docker(["load", "-i", nix.ref]);
  assert.equal(await daemon.runImage("gantry-test/legacy:1", ["cat", "/etc/legacy.txt"]), "from a legacy archive\n");
  assert.equal(await daemon.runImage("gantry-test/nix2017:1", ["hello"]), "hello from nix\n");
});

peerTest("(g) docker save of an image loaded from (a) keeps its diff_ids", async (t) => {
  const daemon = await dockerd.get();
  const busybox = await bases.busyboxArchive();
  const saved = await dockerSavedBase(daemon, busybox, "gantry-test/busybox:1", await tmpDir(t));
  const before = await skopeoJson<ConfigJson>("inspect", "--config", `docker-archive:${busybox.ref}`);
  const after = await skopeoJson<ConfigJson>("inspect", "--config", `docker-archive:${saved.ref}`);
  assert.deepEqual(after.rootfs.diff_ids, before.rootfs.diff_ids);
  const members = await tarMembers(saved.ref);
  assert.ok(members.some((m) => /^[0-9a-f]{64}\/layer\.tar$/.test(m)), "dockerd 20.10 writes ID/layer.tar");
});

peerTest("a private dockerd stops by its PID and leaves no process, mount or directory", async () => {
  const daemon = await startDockerd();
  assert.match((await daemon.docker(["info", "--format", "{{.Driver}}"])).stdout.toString(), /overlay2/);
  await daemon.stop();
  assert.throws(() => process.kill(daemon.pid, 0), /ESRCH/);
  assert.deepEqual(await mountsUnder(daemon.dir), []);
  assert.equal(existsSync(daemon.dir), false);
});

peerTest("podman loads and runs the busybox docker-archive", async () => {
  const p = await podman.get();
  const busybox = await bases.busyboxArchive();
  await p.podman(["load", "-i", busybox.ref]);
  const out = await p.podman(["run", "--rm", "--network", "none", "docker.io/gantry-test/busybox:1"]);
  assert.equal(out.stdout.toString(), "base\n");
});
