/**
 * The `gantry` bin (src/cli/launch.ts) compiles the CLI with a V8 code cache kept in
 * `$XDG_CACHE_HOME/gantry-code`: made once, after a command that succeeded, private to the
 * user, reused as it is, replaced when damaged, never read from or written to a directory
 * others may write to, and the leftovers of other bundles removed; one per set of node flags,
 * since bin/gantry starts node with a flag and V8 refuses a cache made under other flags.
 * Every run must behave as the CLI does without it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gantryEnv, runGantry } from "../helpers/gantry.js";
import { REPO_ROOT } from "../helpers/paths.js";
import { run } from "../helpers/tools.js";

async function freshHome(): Promise<string> {
  return mkdtemp(join(tmpdir(), "gantry-launch-"));
}

async function version(xdg: string): Promise<void> {
  const r = await runGantry(["--version"], { env: { XDG_CACHE_HOME: xdg } });
  assert.equal(r.code, 0, r.stderr.toString());
  assert.equal(r.stderr.toString(), "", "nothing on stderr");
  assert.match(r.stdout.toString(), /^\d+\.\d+\.\d+\n$/);
}

async function codeFiles(xdg: string): Promise<string[]> {
  return (await readdir(join(xdg, "gantry-code")).catch(() => [])).filter((n) => n.endsWith(".bin"));
}

test("a code cache is made once, private to the user, and then used as it is", async (t) => {
  const xdg = await freshHome();
  t.after(() => rm(xdg, { recursive: true, force: true }));
  await version(xdg);
  const [file] = await codeFiles(xdg);
  assert.ok(file, "no code cache was written");
  assert.equal((await stat(join(xdg, "gantry-code"))).mode & 0o777, 0o700);
  const first = await stat(join(xdg, "gantry-code", file));
  assert.equal(first.mode & 0o777, 0o600);
  assert.ok(first.size > 10_000, `a code cache of ${first.size} bytes`);
  await version(xdg);
  const second = await stat(join(xdg, "gantry-code", file));
  assert.equal(second.ino, first.ino, "an accepted cache is not written again");
  assert.equal(second.mtimeMs, first.mtimeMs);
});

test("a command that fails writes no code cache", async (t) => {
  const xdg = await freshHome();
  t.after(() => rm(xdg, { recursive: true, force: true }));
  const r = await runGantry(["build", join(xdg, "missing.json")], { env: { XDG_CACHE_HOME: xdg } });
  assert.equal(r.code, 1);
  assert.deepEqual(await codeFiles(xdg), []);
});

test("a damaged code cache is refused by V8 and replaced; the command runs all the same", async (t) => {
  const xdg = await freshHome();
  t.after(() => rm(xdg, { recursive: true, force: true }));
  await version(xdg);
  const [file] = await codeFiles(xdg);
  const path = join(xdg, "gantry-code", file!);
  const garbage = Buffer.alloc(4096, 0x5a);
  await writeFile(path, garbage);
  await version(xdg);
  const after = await readFile(path);
  assert.ok(!after.equals(garbage), "the damaged cache is still there");
  assert.ok(after.length > 10_000);
});

test("no code cache is written into a directory others may write to", async (t) => {
  const xdg = await freshHome();
  t.after(() => rm(xdg, { recursive: true, force: true }));
  await mkdir(join(xdg, "gantry-code"));
  await chmod(join(xdg, "gantry-code"), 0o777);
  await version(xdg);
  assert.deepEqual(await codeFiles(xdg), [], "a cache was written where others may write");
});

test("the code caches of other bundles are removed when a new one is written", async (t) => {
  const xdg = await freshHome();
  t.after(() => rm(xdg, { recursive: true, force: true }));
  await version(xdg);
  const [current] = await codeFiles(xdg);
  await rm(join(xdg, "gantry-code", current!));
  await writeFile(join(xdg, "gantry-code", "v0.0.0-x64-1-1.bin"), "an old bundle's", { mode: 0o600 });
  await version(xdg);
  assert.deepEqual(await codeFiles(xdg), [current]);
});

test("bin/gantry (node started with a flag) and `node gantry.mjs` each keep a code cache the other leaves alone", async (t) => {
  const xdg = await freshHome();
  t.after(() => rm(xdg, { recursive: true, force: true }));
  const bin = async (): Promise<void> => {
    const r = await run(join(REPO_ROOT, "bin", "gantry"), ["--version"], { allowFailure: true, env: gantryEnv({ XDG_CACHE_HOME: xdg }) });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "", "nothing on stderr");
  };
  await version(xdg);
  await bin();
  const files = await codeFiles(xdg);
  assert.equal(files.length, 2, `one cache for each: ${files.join(", ")}`);
  const before = await Promise.all(files.map((f) => stat(join(xdg, "gantry-code", f))));
  // Were they one file, each would refuse the other's cache and write its own over it.
  await version(xdg);
  await bin();
  const after = await Promise.all(files.map((f) => stat(join(xdg, "gantry-code", f))));
  assert.deepEqual(after.map((s) => [s.ino, s.mtimeMs]), before.map((s) => [s.ino, s.mtimeMs]), "a cache was written again");
});
