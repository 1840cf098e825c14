/**
 * SIGKILL at random points of build, export, copy, pull and push: the process gets no
 * chance to clean up, as under the OOM killer or a CI timeout. After every kill:
 * - the destination is either as it was before or the complete result (never partial);
 * - the cache the killed runs shared serves nothing corrupt: a rerun with it succeeds and
 *   writes exactly the bytes a clean run writes;
 * - the rerun leaves no temporary file beside the destination (what the killed run left
 *   is swept, util/temp-names.ts).
 * Kill points are drawn from a seeded generator over 0 to 1.1 times a clean run's duration;
 * GANTRY_KILL_SEED and GANTRY_KILL_POINTS change them (the seed is printed).
 */
import { test, after, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { runGantry, spawnGantry } from "../helpers/gantry.js";
import { startRegistry, type RunningRegistry } from "../helpers/registry.js";
import { fileTmpDir, tmpDir } from "../helpers/tmp.js";
import { peerTest, skopeo } from "../helpers/tools.js";

const SEED = Number(process.env["GANTRY_KILL_SEED"] ?? 20261130);
const POINTS = Number(process.env["GANTRY_KILL_POINTS"] ?? 6);
const shared = fileTmpDir("gantry-kill-");

let registry: Promise<RunningRegistry> | undefined;
after(async () => { await (await registry?.catch(() => undefined))?.stop(); });

/** mulberry32: a small seeded generator, so a failing kill point can be replayed. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runs gantry and SIGKILLs it after `ms` (unless it finished first); resolves once it has exited. */
async function killAfter(args: string[], ms: number, env: NodeJS.ProcessEnv): Promise<{ killed: boolean; took: number }> {
  const started = Date.now();
  const { child, done } = spawnGantry(args, { env });
  let killed = false;
  const timer = setTimeout(() => { killed = child.kill("SIGKILL"); }, ms);
  const r = await done;
  clearTimeout(timer);
  if (!killed) assert.equal(r.code, 0, `finished before its kill point but failed: ${r.stderr}`);
  return { killed, took: Date.now() - started };
}

async function ok(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const started = Date.now();
  const r = await runGantry(args, { env });
  assert.equal(r.code, 0, `gantry ${args.join(" ")}: ${r.stderr}`);
  return Date.now() - started;
}

/** A file's or a directory's content, comparable: path → sha256 of every file below. */
async function contentOf(path: string): Promise<string | undefined> {
  const st = await stat(path).catch(() => undefined);
  if (st === undefined) return undefined;
  if (st.isFile()) return createHash("sha256").update(await readFile(path)).digest("hex");
  const lines: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else lines.push(`${relative(path, p)} ${createHash("sha256").update(await readFile(p)).digest("hex")}`);
    }
  };
  await walk(path);
  return lines.sort().join("\n");
}

/** Names gantry's temporaries carry: `.NAME.gantry-…` beside a destination. */
async function temporariesBeside(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.includes(".gantry-"));
}

interface KillCase {
  /** The command, writing to `dest`. */
  args: string[];
  dest: string;
  /** What `dest` holds before each kill: the previous output (a file), or nothing. */
  previous?: string;
  env: NodeJS.ProcessEnv;
  /** The destination's content after a clean run (from another cache). */
  expected: string;
}

/** Kills the command at POINTS points, checking the destination after each, then reruns it. */
async function killAndRerun(t: TestContext, name: string, c: KillCase): Promise<void> {
  const random = generator(SEED ^ [...name].reduce((h, ch) => Math.imul(h, 31) + ch.charCodeAt(0), 7));
  let full = await ok(c.args, c.env);
  await rm(c.dest, { recursive: true, force: true });
  let killedCount = 0;
  for (let i = 0; i < POINTS; i++) {
    if (c.previous !== undefined) await writeFile(c.dest, c.previous);
    const ms = Math.floor(random() * full * 1.1);
    const { killed, took } = await killAfter(c.args, ms, c.env);
    if (killed) killedCount++;
    // What the killed runs left in the cache makes the next runs shorter: aim within them.
    else full = took;
    const now = await contentOf(c.dest);
    const before = c.previous === undefined ? undefined : createHash("sha256").update(c.previous).digest("hex");
    assert.ok(now === before || now === c.expected, `${name}, killed at ${ms} ms of ${full}: the destination is partial`);
  }
  t.diagnostic(`${name}: seed ${SEED}, ${POINTS} kill points over ${full} ms, ${killedCount} killed mid-run`);
  await ok(c.args, c.env);
  assert.equal(await contentOf(c.dest), c.expected, `${name}: the rerun after the kills writes what a clean run writes`);
  assert.deepEqual(await temporariesBeside(join(c.dest, "..")), [], `${name}: nothing left beside the destination`);
}

/** A spec of two layers of files that do not compress, so each run takes a moment. */
async function fixture(): Promise<{ dir: string; spec: string; image: string; cleanEnv: NodeJS.ProcessEnv }> {
  const dir = await shared();
  const spec = join(dir, "spec.json");
  if (await stat(spec).catch(() => undefined)) return { dir, spec, image: join(dir, "image.tar"), cleanEnv: { GANTRY_CACHE: join(dir, "clean-cache") } };
  for (const part of ["deps", "app"]) {
    await mkdir(join(dir, part), { recursive: true });
    for (let i = 0; i < 12; i++) await writeFile(join(dir, part, `f${i}`), randomBytes(1024 * 1024));
    for (let i = 0; i < 200; i++) await writeFile(join(dir, part, `small${i}.txt`), `file ${i}\n`);
  }
  await writeFile(spec, JSON.stringify({
    name: "kill", tag: "1",
    layers: [{ copyToRoot: [{ from: "./deps", to: "/deps" }] }, { copyToRoot: [{ from: "./app", to: "/app" }] }],
  }));
  const cleanEnv = { GANTRY_CACHE: join(dir, "clean-cache") };
  await ok(["build", spec, "-o", join(dir, "image.tar")], cleanEnv);
  return { dir, spec, image: join(dir, "image.tar"), cleanEnv };
}

test("build: killed anywhere, the output is the old file or the new image, and the shared cache serves nothing corrupt", async (t) => {
  const { spec, image } = await fixture();
  const dir = await tmpDir(t, "gantry-kill-build-");
  const dest = join(dir, "out", "image.tar");
  await mkdir(join(dir, "out"));
  await killAndRerun(t, "build", {
    args: ["build", spec, "-o", dest], dest, previous: "the previous image",
    env: { GANTRY_CACHE: join(dir, "cache") },
    expected: (await contentOf(image))!,
  });
  // Nothing of the killed runs is left in the cache's temporary directory either.
  const tmp = join(dir, "cache", "blobs", "tmp");
  assert.deepEqual(await readdir(tmp).catch(() => []), [], "the blob store's tmp/ was swept");
});

test("export and copy: killed anywhere, the destination is absent or complete", async (t) => {
  const { image, cleanEnv } = await fixture();
  const dir = await tmpDir(t, "gantry-kill-copy-");
  const rootTar = join(dir, "clean-root.tar");
  await ok(["export", image, "-o", rootTar], cleanEnv);
  await mkdir(join(dir, "export"));
  await killAndRerun(t, "export", {
    args: ["export", image, "-o", join(dir, "export", "root.tar")], dest: join(dir, "export", "root.tar"),
    env: { GANTRY_CACHE: join(dir, "cache") }, expected: (await contentOf(rootTar))!,
  });
  const layout = join(dir, "clean-layout");
  await ok(["copy", image, `oci:${layout}:1`], cleanEnv);
  await mkdir(join(dir, "copy"));
  await killAndRerun(t, "copy to oci:", {
    args: ["copy", image, `oci:${join(dir, "copy", "layout")}:1`], dest: join(dir, "copy", "layout"),
    env: { GANTRY_CACHE: join(dir, "cache") }, expected: (await contentOf(layout))!,
  });
});

peerTest("pull and push: killed anywhere, a rerun completes; the registry's tag is absent or right", async (t) => {
  const { image, cleanEnv } = await fixture();
  const dir = await tmpDir(t, "gantry-kill-registry-");
  registry ??= startRegistry();
  const reg = await registry;
  const env = { GANTRY_CACHE: join(dir, "cache") };

  const ref = `docker://${reg.host}/kill/push:1`;
  const full = await ok(["push", image, ref], cleanEnv);
  const pushed = await skopeo("inspect", "--tls-verify=false", "--format", "{{.Digest}}", ref);
  const random = generator(SEED);
  for (let i = 0; i < POINTS; i++) {
    const target = `docker://${reg.host}/kill/push${i}:1`;
    await killAfter(["push", image, target], Math.floor(random() * full * 1.1), env);
    const seen = await skopeo("inspect", "--tls-verify=false", "--format", "{{.Digest}}", target).catch(() => undefined);
    assert.ok(seen === undefined || seen === pushed, `push ${i}: the tag points at ${seen}, not ${pushed}`);
    await ok(["push", image, target], env);
    assert.equal(await skopeo("inspect", "--tls-verify=false", "--format", "{{.Digest}}", target), pushed);
  }
  t.diagnostic(`push: seed ${SEED}, ${POINTS} kill points over ${full} ms`);

  const cleanPull = join(dir, "clean-pull.tar");
  await ok(["pull", ref, "-o", cleanPull], { GANTRY_CACHE: join(dir, "clean-pull-cache") });
  await mkdir(join(dir, "pull"));
  await killAndRerun(t, "pull", {
    args: ["pull", ref, "-o", join(dir, "pull", "image.tar")], dest: join(dir, "pull", "image.tar"),
    env, expected: (await contentOf(cleanPull))!,
  });
});
