/**
 * Every example in examples/ builds, and each one that can run prints what it should under
 * docker (`docker run --pull=never`, on the private dockerd the tests start):
 * - the README's first command, run as written on a clean clone of this repository (its
 *   node_modules hardlinked from this checkout, so nothing is fetched), gives a hello image
 *   that docker runs;
 * - examples/base builds the same index digest that examples/node-app pins, under another
 *   cache (its bytes depend on gantry alone);
 * - static-binary, run-as-root and node-app (after `npm ci`, skipped when the npm registry
 *   cannot be reached) print their lines.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { cp, readFile } from "node:fs/promises";
import { join } from "node:path";
import { sharedDockerd } from "../helpers/dockerd.js";
import { runGantry } from "../helpers/gantry.js";
import { REPO_ROOT } from "../helpers/paths.js";
import { fileTmpDir, tmpDir } from "../helpers/tmp.js";
import { peerTest, run, skopeoJson } from "../helpers/tools.js";

const dockerd = sharedDockerd();
const shared = fileTmpDir("gantry-examples-");
const EXAMPLES = join(REPO_ROOT, "examples");

/** The README's first command: the first line of its first code block, without its comment. */
async function readmeFirstCommand(): Promise<string> {
  const readme = await readFile(join(REPO_ROOT, "README.md"), "utf8");
  const block = /```sh\n([^\n]+)\n/.exec(readme);
  assert.ok(block, "the README starts with a sh code block");
  return block[1]!.replace(/\s+#.*$/, "").trim();
}

/** A copy of the examples, so that built files and node_modules never land in the checkout. */
async function examplesCopy(): Promise<string> {
  const dir = join(await shared(), "examples");
  await cp(EXAMPLES, dir, { recursive: true, filter: (src) => !/\/(node_modules|[^/]+\.tar)$/.test(src) });
  return dir;
}

let copy: Promise<string> | undefined;
const examples = (): Promise<string> => (copy ??= examplesCopy());

async function build(args: string[], cwd: string): Promise<void> {
  const r = await runGantry(["build", ...args], { cwd });
  assert.equal(r.code, 0, `gantry build ${args.join(" ")}: ${r.stderr}`);
}

peerTest("the README's first command, on a clean clone, builds a hello image that docker runs", async (t) => {
  const command = await readmeFirstCommand();
  assert.match(command, /npm run example/);
  const clone = join(await tmpDir(t, "gantry-clone-"), "gantry");
  await run("git", ["clone", "--quiet", "--no-hardlinks", REPO_ROOT, clone]);
  // What `npm install` would put there, without the network: this checkout's modules, hardlinked.
  await run("cp", ["-al", join(REPO_ROOT, "node_modules"), join(clone, "node_modules")]);
  const r = await run("sh", ["-c", command], { cwd: clone, allowFailure: true, timeoutMs: 300_000, env: { ...process.env, npm_config_offline: "true" } });
  assert.equal(r.code, 0, `${command}: ${r.stderr}`);
  const docker = await dockerd.get();
  await docker.docker(["load", "-i", join(clone, "examples", "hello", "hello.tar")]);
  const printed = await docker.runImage("hello:latest");
  assert.match(printed, /^hello from gantry \(node v\d+\.\d+\.\d+ on linux\/(x64|arm64)\)\n$/);
});

peerTest("examples/base builds the index that node-app pins, in any cache", async () => {
  const dir = await examples();
  await build(["base/image.json", "-o", "oci-archive:base/base.tar"], dir);
  const spec = await readFile(join(dir, "node-app", "image.ts"), "utf8");
  const pinned = /fromImageDigest: "(sha256:[0-9a-f]{64})"/.exec(spec)?.[1];
  assert.ok(pinned, "node-app pins its base");
  const raw = await run("skopeo", ["inspect", "--raw", `oci-archive:${join(dir, "base", "base.tar")}`]);
  assert.equal(`sha256:${createHash("sha256").update(raw.stdout).digest("hex")}`, pinned, "examples/base builds the digest node-app pins (update the pin when gantry's tar bytes change)");
  const index = JSON.parse(raw.stdout.toString("utf8")) as { manifests: { platform: { architecture: string } }[] };
  assert.deepEqual(index.manifests.map((m) => m.platform.architecture), ["amd64", "arm64"]);
});

peerTest("examples/static-binary and examples/run-as-root run under docker", async (t) => {
  const dir = await examples();
  const out = await tmpDir(t, "gantry-examples-out-");
  const docker = await dockerd.get();
  await build(["static-binary/image.json", "-o", join(out, "static.tar")], dir);
  await docker.docker(["load", "-i", join(out, "static.tar")]);
  assert.equal(await docker.runImage("static-busybox:latest"), "hello from a static busybox, from scratch\n");
  const config = await skopeoJson<{ Layers: string[] }>("inspect", `docker-archive:${join(out, "static.tar")}`);
  assert.equal(config.Layers.length, 1);

  await build(["run-as-root/image.json", "-o", join(out, "rar.tar")], dir);
  await docker.docker(["load", "-i", join(out, "rar.tar")]);
  assert.equal(await docker.runImage("run-as-root:latest"), "65534:65534 /data/note.txt\nwritten by runAsRoot, owned by nobody\nnobody\n");
});

peerTest("examples/node-app: runtime, dependencies and app layers on the pinned base; an edit changes the app layer alone", async (t) => {
  const dir = await examples();
  await build(["base/image.json", "-o", "oci-archive:base/base.tar"], dir);
  const app = join(dir, "node-app");
  const npm = await run("npm", ["ci", "--no-audit", "--no-fund"], { cwd: app, allowFailure: true, timeoutMs: 120_000 });
  if (npm.code !== 0) return t.skip(`npm ci could not fetch the example's dependency: ${npm.stderr.split("\n")[0]}`);
  const out = await tmpDir(t, "gantry-examples-out-");
  await build(["image.ts", "-o", join(out, "app.tar")], app);
  const docker = await dockerd.get();
  await docker.docker(["load", "-i", join(out, "app.tar")]);
  assert.equal(await docker.runImage("node-app:1"), "node-app up, the cache keeps layers for 7 days\n");

  const before = await skopeoJson<{ Layers: string[] }>("inspect", `docker-archive:${join(out, "app.tar")}`);
  assert.equal(before.Layers.length, 4, "the base's layer, then runtime, dependencies, app");
  await run("sh", ["-c", "echo '// edited' >> src/index.js"], { cwd: app });
  await build(["image.ts", "-o", join(out, "app2.tar")], app);
  const after = await skopeoJson<{ Layers: string[] }>("inspect", `docker-archive:${join(out, "app2.tar")}`);
  assert.deepEqual(after.Layers.slice(0, 3), before.Layers.slice(0, 3), "base, runtime and dependencies unchanged");
  assert.notEqual(after.Layers[3], before.Layers[3]);
});
