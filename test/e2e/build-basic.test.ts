/**
 * `gantry build` on the busybox base (umoci + skopeo docker-archive), judged from
 * the outside: skopeo, umoci, GNU tar, runc, dockerd and podman must all read and run
 * what it writes, and see exactly the layer the spec asks for. One build is shared
 * by the tests of this file; the `-o -` test makes its own.
 */
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { spawn } from "node:child_process";
import { pipeline } from "node:stream/promises";
import { fixtureBases } from "../helpers/bases.js";
import { buildCase, CMD_OUTPUT, CREATED, IMAGE_NAME, IMAGE_TAG, prepareCase, standardSpec, type BuildCase } from "../helpers/build-case.js";
import { sharedDockerd, DOCKER_CLIENT } from "../helpers/dockerd.js";
import { spawnGantry } from "../helpers/gantry.js";
import {
  assertBaseUnpacked, assertCanonicalLayer, assertLayersOnBase, assertPayloadUnpacked, assertPeersAgree,
  envMap, newLayerEntries, type ConfigJson,
} from "../helpers/image-checks.js";
import { sharedPodman } from "../helpers/podman.js";
import { fileTmpDir, tmpDir } from "../helpers/tmp.js";
import { peerTest, runcRun, skopeoJson, unpackWithPeers } from "../helpers/tools.js";

const bases = fixtureBases();
const dockerd = sharedDockerd();
const podman = sharedPodman();
const shared = fileTmpDir("gantry-basic-");

let built: Promise<BuildCase> | undefined;
/** The one build of this file: the standard spec on the busybox docker-archive. */
function theBuild(t: TestContext): Promise<BuildCase> {
  built ??= (async () => {
    const base = await bases.busyboxArchive();
    return buildCase(t, standardSpec(base.ref), { dir: await shared() });
  })();
  return built;
}

peerTest("skopeo reads the output as docker-archive and as oci-archive, agreeing with gantry inspect", async (t) => {
  const { out } = await theBuild(t);
  const config = await assertPeersAgree(out);
  assert.equal(config.created, "2024-01-02T03:04:05Z");
  assert.equal(config.os, "linux");
});

peerTest("the base's layers come first and unchanged, then one new layer", async (t) => {
  const { out } = await theBuild(t);
  const config = await skopeoJson<ConfigJson>("inspect", "--config", `docker-archive:${out}`);
  await assertLayersOnBase(config, await bases.busyboxArchive());
  const baseConfig = await skopeoJson<ConfigJson>("inspect", "--config", `docker-archive:${(await bases.busyboxArchive()).ref}`);
  assert.deepEqual(config.history?.slice(0, baseConfig.history?.length), baseConfig.history, "the base's history is kept in front");
});

peerTest("Env is merged by name: base PATH kept, spec's FOO wins, NEW added; other fields inherited", async (t) => {
  const { out } = await theBuild(t);
  const config = await skopeoJson<ConfigJson>("inspect", "--config", `docker-archive:${out}`);
  const env = envMap(config.config?.Env);
  assert.equal(env.get("PATH"), "/usr/sbin:/usr/bin:/sbin:/bin");
  assert.equal(env.get("BASEONLY"), "yes");
  assert.equal(env.get("FOO"), "spec");
  assert.equal(env.get("NEW"), "1");
  assert.equal(env.size, 4);
  assert.deepEqual(config.config?.Cmd, ["/bin/sh", "-c", "echo hello from gantry $FOO"]);
  assert.equal(config.config?.WorkingDir, "/", "a field the spec does not give is the base's");
});

peerTest("umoci unpacks the base's files and ours with the spec's modes, owners, mtime and symlinks", async (t) => {
  const { out } = await theBuild(t);
  const { rootfs } = await unpackWithPeers(`docker-archive:${out}`, await tmpDir(t));
  await assertPayloadUnpacked(rootfs, await bases.busyboxArchive());
  await assertBaseUnpacked(rootfs, await bases.busyboxArchive(), ["/etc/changed.txt"]);
});

peerTest("the new layer holds only what differs from the base, in canonical order", async (t) => {
  const { out } = await theBuild(t);
  const entries = await newLayerEntries(out, await tmpDir(t));
  const paths = entries.map((e) => e.path);
  assertCanonicalLayer(entries);
  assert.ok(paths.includes("etc/changed.txt"), `a changed file is stored: ${paths.join(" ")}`);
  assert.ok(!paths.includes("etc/base.txt"), `a file identical to the base's is left out: ${paths.join(" ")}`);
  assert.ok(!paths.includes("etc"), `a directory the base has, same mode and owner, is not restated: ${paths.join(" ")}`);
  for (const p of ["app", "app/hello.txt", "app/link", "app/run.sh", "app/secret.txt"]) assert.ok(paths.includes(p), `${p} stored`);
  assert.deepEqual(paths.filter((p) => p.startsWith("bin") || p.startsWith("opt")), [], "nothing of the base restated");
  const secret = entries.find((e) => e.path === "app/secret.txt");
  assert.deepEqual([secret?.mode, secret?.uid, secret?.gid], [0o640, 1000, 1000], "perms rule applied in the tar");
  const hello = entries.find((e) => e.path === "app/hello.txt");
  assert.deepEqual([hello?.uid, hello?.gid], [0, 0], "source owner 1234 replaced by the spec's 0");
});

peerTest("runc runs the image unpacked by umoci and prints the Cmd's output", async (t) => {
  const { out } = await theBuild(t);
  const { bundle } = await unpackWithPeers(`docker-archive:${out}`, await tmpDir(t));
  assert.equal(await runcRun(bundle), CMD_OUTPUT);
});

peerTest("docker load accepts the output, keeps its config digest and name, and docker run prints the Cmd's output", async (t) => {
  const { out } = await theBuild(t);
  const daemon = await dockerd.get();
  await daemon.docker(["load", "-i", out]);
  const id = (await daemon.docker(["image", "inspect", "--format", "{{.Id}}", `${IMAGE_NAME}:${IMAGE_TAG}`])).stdout.toString().trim();
  const ours = await skopeoJson<{ config: { digest: string } }>("inspect", "--raw", `oci-archive:${out}`);
  assert.equal(id, ours.config.digest, "docker's image id is the config digest");
  assert.equal(await daemon.runImage(`${IMAGE_NAME}:${IMAGE_TAG}`), CMD_OUTPUT);
});

peerTest("gantry build SPEC -o - | docker load works with no temporary file", async (t) => {
  const daemon = await dockerd.get();
  const base = await bases.busyboxArchive();
  const dir = await tmpDir(t);
  const spec = standardSpec(base.ref, { name: "gantry-test/piped", tag: "2" });
  const specPath = await prepareCase(dir, spec);

  const gantry = spawnGantry(["build", specPath, "-o", "-"], { cwd: dir });
  const load = spawn(DOCKER_CLIENT, ["load"], { env: daemon.env, stdio: ["pipe", "pipe", "pipe"] });
  let loadOut = "";
  let loadErr = "";
  load.stdout.on("data", (c: Buffer) => { loadOut += c.toString(); });
  load.stderr.on("data", (c: Buffer) => { loadErr += c.toString(); });
  const loaded = new Promise<number>((resolve) => load.on("close", (code) => resolve(code ?? -1)));
  await pipeline(gantry.child.stdout, load.stdin);
  const [g, code] = await Promise.all([gantry.done, loaded]);
  assert.equal(g.code, 0, `gantry build -o - failed: ${g.stderr}`);
  assert.equal(code, 0, `docker load failed: ${loadErr}`);
  assert.match(loadOut, /gantry-test\/piped:2/);
  assert.equal(await daemon.runImage("gantry-test/piped:2"), CMD_OUTPUT);
});

peerTest("podman load accepts the output and podman run prints the Cmd's output", async (t) => {
  const { out } = await theBuild(t);
  const p = await podman.get();
  const loaded = await p.podman(["load", "-i", out]);
  assert.match(loaded.stdout.toString() + loaded.stderr, /gantry-test\/hello:1/);
  const ran = await p.podman(["run", "--rm", "--network", "none", `${IMAGE_NAME}:${IMAGE_TAG}`]);
  assert.equal(ran.stdout.toString(), CMD_OUTPUT);
});

peerTest("without a spec mtime, new files take SOURCE_DATE_EPOCH, else the spec's created", async (t) => {
  const base = await bases.busyboxArchive();
  const { mtime: _omit, ...specWithoutMtime } = standardSpec(base.ref);
  const epoch = 1_234_567_890;
  const withEpoch = await buildCase(t, specWithoutMtime, { gantry: { env: { SOURCE_DATE_EPOCH: String(epoch) } } });
  const withCreated = await buildCase(t, specWithoutMtime);
  const scratch = await tmpDir(t);
  const times = async (out: string) => new Set((await newLayerEntries(out, scratch)).map((e) => e.mtime));
  assert.deepEqual(await times(withEpoch.out), new Set([epoch]));
  assert.deepEqual(await times(withCreated.out), new Set([Date.parse(CREATED) / 1000]));
});
