/**
 * The `gantry` bin (src/cli/launch.ts) compiles the CLI with a V8 code cache kept in
 * `$XDG_CACHE_HOME/gantry-code`: made once, after a command that succeeded, private to the
 * user, reused as it is, replaced when damaged, never read from or written to a directory
 * others may write to, and the leftovers of other bundles removed; one per set of node flags,
 * since bin/gantry starts node with a flag and V8 refuses a cache made under other flags.
 * Every run must behave as the CLI does without it. It also starts the thread of a
 * rebuild's snapshot walk ahead (src/cache/snapshot-prestart.ts) while the cache asks for it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gantryEnv, runGantry } from "../helpers/gantry.js";
import { REPO_ROOT } from "../helpers/paths.js";
import { settle } from "../helpers/settle.js";
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

// Whether the launcher then starts the thread is its one call to prestartSnapshotThread, whose
// decision and hand-over prestarted-worker.test.ts checks: from outside, a command that started
// one looks the same, so this checks what the cache tells the next command, and that a rebuild
// the launcher gave the thread to still finds its layer unchanged.
test("after a build that walked a big tree the cache asks the next command for the walk's second thread, which still finds the layer unchanged; a build that wants none stops asking", async (t) => {
  const dir = await freshHome();
  t.after(() => rm(dir, { recursive: true, force: true }));
  // 10,100 entries: a snapshot that big is walked on several threads (source-snapshot.ts).
  const tree = join(dir, "tree");
  for (let d = 0; d < 100; d++) {
    await mkdir(join(tree, `d${d}`), { recursive: true });
    await Promise.all(Array.from({ length: 100 }, (_, f) => writeFile(join(tree, `d${d}`, `f${f}`), `${d}/${f}\n`)));
  }
  await writeFile(join(dir, "big.json"), JSON.stringify({ name: "big", tag: "1", copyToRoot: [tree] }));
  await mkdir(join(dir, "small"));
  await writeFile(join(dir, "small", "a.txt"), "a\n");
  await writeFile(join(dir, "small.json"), JSON.stringify({ name: "small", tag: "1", copyToRoot: ["small"] }));
  await settle(dir); // a snapshot is recorded only once its entries are older than the clock's tick
  const env = { GANTRY_CACHE: join(dir, "cache") };
  const hint = join(dir, "cache", "snapshots", "threads-wanted");
  const build = async (spec: string): Promise<string> => {
    const r = await runGantry(["build", join(dir, spec), "-o", join(dir, `${spec}.tar`)], { env });
    assert.equal(r.code, 0, r.stderr.toString());
    return r.stderr.toString();
  };
  await build("big.json");
  assert.ok(existsSync(hint), "the build that recorded a big snapshot says so");
  const again = await build("big.json");
  assert.match(again, /unchanged: sha256:[0-9a-f]{64} from the cache \(its sources as the last build saw them\)/);
  assert.ok(existsSync(hint), "a build that matched a big snapshot says so");
  // This build's command starts a thread no walk takes: it is released, and the hint goes.
  await build("small.json");
  assert.ok(!existsSync(hint), "a build whose snapshots are small says so");
});

test("bin/gantry runs through a link to it, from its own directory, and through a linked directory above it", async (t) => {
  const dir = await freshHome();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const bin = join(REPO_ROOT, "bin", "gantry");
  await symlink(bin, join(dir, "gantry")); // as npm's .bin/gantry is
  await symlink(REPO_ROOT, join(dir, "checkout"));
  const env = gantryEnv({ XDG_CACHE_HOME: dir });
  for (const [cmd, args, cwd] of [
    [join(dir, "gantry"), ["--version"], dir],
    ["sh", ["gantry", "--version"], join(REPO_ROOT, "bin")],
    [join(dir, "checkout", "bin", "gantry"), ["--version"], dir],
  ] as const) {
    const r = await run(cmd, [...args], { allowFailure: true, env, cwd });
    assert.equal(r.code, 0, `${cmd} ${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stdout.toString(), /^\d+\.\d+\.\d+\n$/);
  }
});
