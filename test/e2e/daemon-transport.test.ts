/**
 * The `docker-daemon:` transport through the command line, against the private dockerd the
 * tests start: `build -o docker-daemon:`, `build --load`, a spec built on
 * `fromImage: docker-daemon:`, `inspect docker-daemon:` and `copy docker-daemon: docker://`,
 * each judged by docker itself (`docker image inspect`, `docker run --pull=never`) and by
 * skopeo. gantry runs with only node on PATH: no docker CLI is there to lean on. An engine
 * that is not there is one `gantry:` line, before any work.
 */
import assert from "node:assert/strict";
import { after } from "node:test";
import type { TestContext } from "node:test";
import { dirname, join } from "node:path";
import { fixtureBases } from "../helpers/bases.js";
import { CMD_OUTPUT, prepareCase, standardSpec } from "../helpers/build-case.js";
import { sharedDockerd, type DockerDaemon } from "../helpers/dockerd.js";
import { runGantry, type GantryResult } from "../helpers/gantry.js";
import { sharedPodman } from "../helpers/podman.js";
import { startRegistry, type RunningRegistry } from "../helpers/registry.js";
import { fileTmpDir, tmpDir } from "../helpers/tmp.js";
import { peerTest, requireTools, skopeoJson } from "../helpers/tools.js";

const bases = fixtureBases();
const dockerd = sharedDockerd();
const podman = sharedPodman();
const shared = fileTmpDir("gantry-daemon-");

let registry: Promise<RunningRegistry> | undefined;
after(async () => { await (await registry?.catch(() => undefined))?.stop(); });

/** gantry with DOCKER_HOST set to the test's dockerd and nothing but node's directory on PATH. */
async function gantry(daemon: DockerDaemon | { host: string }, args: string[], cwd?: string): Promise<GantryResult> {
  return runGantry(args, { env: { DOCKER_HOST: daemon.host, PATH: dirname(process.execPath) }, ...(cwd !== undefined ? { cwd } : {}) });
}

function ok(result: GantryResult, what: string): void {
  assert.equal(result.code, 0, `${what} failed: ${result.stderr.toString()}`);
}

interface DockerImage { Id: string; RepoTags: string[]; RootFS: { Layers: string[] } }

async function dockerImage(daemon: DockerDaemon, name: string): Promise<DockerImage> {
  const r = await daemon.docker(["image", "inspect", name]);
  return (JSON.parse(r.stdout.toString()) as DockerImage[])[0]!;
}

/** The standard build case (busybox base, hello payload) prepared in a directory of its own; returns the spec path. */
async function prepare(t: TestContext, fromImage?: string): Promise<string> {
  const dir = await tmpDir(t, "gantry-daemon-case-");
  return prepareCase(dir, standardSpec(fromImage ?? (await bases.busyboxArchive()).ref));
}

let loaded: Promise<{ daemon: DockerDaemon; name: string }> | undefined;
/** One image built straight into the engine, shared by the tests that read it back. */
function builtIntoEngine(t: TestContext): Promise<{ daemon: DockerDaemon; name: string }> {
  loaded ??= (async () => {
    requireTools("skopeo", "umoci");
    const daemon = await dockerd.get();
    const spec = await prepare(t);
    const name = "gantry-test/daemon:1";
    ok(await gantry(daemon, ["build", spec, "-o", `docker-daemon:${name}`], dirname(spec)), "build -o docker-daemon:");
    return { daemon, name };
  })();
  return loaded;
}

peerTest("build -o docker-daemon:NAME:TAG loads the image; docker runs it", async (t) => {
  const { daemon, name } = await builtIntoEngine(t);
  const image = await dockerImage(daemon, name);
  assert.deepEqual(image.RepoTags, [name]);
  assert.equal(await daemon.runImage(name), CMD_OUTPUT);
});

peerTest("build --load tags the image with its name and every --tag", async (t) => {
  requireTools("skopeo", "umoci");
  const daemon = await dockerd.get();
  const spec = await prepare(t);
  const result = await gantry(daemon, ["build", spec, "--load", "--tag", "gantry-test/also:2", "--json"], dirname(spec));
  ok(result, "build --load");
  const summary = JSON.parse(result.stdout.toString()) as { configDigest: string };
  const image = await dockerImage(daemon, "gantry-test/also:2");
  for (const name of ["gantry-test/also:2", "gantry-test/hello:1"]) assert.ok(image.RepoTags.includes(name), `${name} in ${image.RepoTags.join(", ")}`);
  assert.equal(image.Id, summary.configDigest, "the engine knows the image by its config digest");
  assert.equal(await daemon.runImage("gantry-test/also:2"), CMD_OUTPUT);
});

peerTest("inspect docker-daemon: shows the engine's image; a spec builds on it", async (t) => {
  const { daemon, name } = await builtIntoEngine(t);
  const engine = await dockerImage(daemon, name);
  const inspected = await gantry(daemon, ["inspect", "--json", `docker-daemon:${name}`]);
  ok(inspected, "inspect docker-daemon:");
  const seen = JSON.parse(inspected.stdout.toString()) as { ConfigDigest: string; RepoTags: string[]; LayersData: { DiffID: string }[] };
  assert.equal(seen.ConfigDigest, engine.Id);
  assert.deepEqual(seen.LayersData.map((l) => l.DiffID), engine.RootFS.Layers);

  // A spec whose base is the engine's image: its layers come first, unchanged.
  const spec = await prepare(t, `docker-daemon:${name}`);
  const out = join(dirname(spec), "on-daemon.tar");
  ok(await gantry(daemon, ["build", spec, "-o", out], dirname(spec)), "build on a docker-daemon: base");
  const config = await skopeoJson<{ rootfs: { diff_ids: string[] } }>("inspect", "--config", `docker-archive:${out}`);
  assert.deepEqual(config.rootfs.diff_ids.slice(0, engine.RootFS.Layers.length), engine.RootFS.Layers);
  assert.equal(config.rootfs.diff_ids.length, engine.RootFS.Layers.length + 1);
});

peerTest("copy docker-daemon: docker:// pushes the engine's image; docker pulls it back and runs it", async (t) => {
  requireTools("docker-registry");
  const { daemon, name } = await builtIntoEngine(t);
  registry ??= startRegistry();
  const reg = await registry;
  const ref = `${reg.host}/daemon/copied:1`;
  ok(await gantry(daemon, ["copy", `docker-daemon:${name}`, `docker://${ref}`]), "copy docker-daemon: docker://");
  const pushed = await skopeoJson<{ rootfs: { diff_ids: string[] } }>("inspect", "--config", "--tls-verify=false", `docker://${ref}`);
  assert.deepEqual(pushed.rootfs.diff_ids, (await dockerImage(daemon, name)).RootFS.Layers);
  // dockerd speaks plain HTTP to registries on loopback; the image it pulls must run.
  await daemon.docker(["pull", ref]);
  assert.equal(await daemon.runImage(ref), CMD_OUTPUT);
});

peerTest("podman's Docker-compatible service takes a --load the same way; podman runs the image", async (t) => {
  requireTools("skopeo", "umoci");
  const service = { host: await (await podman.get()).serve() };
  const spec = await prepare(t);
  ok(await gantry(service, ["build", spec, "--load"], dirname(spec)), "build --load into podman");
  const p = await podman.get();
  const out = await p.podman(["run", "--rm", "--pull=never", "gantry-test/hello:1"]);
  assert.equal(out.stdout.toString(), CMD_OUTPUT);
  const back = await gantry(service, ["inspect", "--json", "docker-daemon:gantry-test/hello:1"]);
  ok(back, "inspect docker-daemon: through podman");
});

peerTest("no engine at DOCKER_HOST is one line, before any layer is packed", async (t) => {
  const spec = await prepare(t);
  const missing = { host: `unix://${join(await shared(), "no-engine.sock")}` };
  for (const args of [["-o", "docker-daemon:gantry-test/none:1"], ["--load"]]) {
    const result = await gantry(missing, ["build", spec, ...args], dirname(spec));
    const stderr = result.stderr.toString();
    assert.equal(result.code, 1, stderr);
    const lines = stderr.trim().split("\n");
    assert.equal(lines.length, 1, `one line only: ${stderr}`);
    assert.match(lines[0]!, /^gantry: the Docker engine at unix:\/\/.*no-engine\.sock cannot be reached/);
  }
  const inspect = await gantry(missing, ["inspect", "docker-daemon:gantry-test/none:1"]);
  assert.equal(inspect.code, 1);
  assert.match(inspect.stderr.toString(), /^gantry: the Docker engine at .* cannot be reached/);
  // An output that is not a reference at all is refused before the base is even read.
  const bad = await gantry(missing, ["build", spec, "-o", "docker-daemon:"], dirname(spec));
  assert.equal(bad.code, 1);
  assert.match(bad.stderr.toString(), /^gantry: the image reference "docker-daemon:" is invalid: it names no image/);
  assert.doesNotMatch(bad.stderr.toString(), /reading base|packing/);
});
