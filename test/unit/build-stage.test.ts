/**
 * Staging (src/builder/stage.ts, lay-tree.ts): the copyToRoot sources laid in a directory
 * for extraCommands and runAsRoot are the ones a direct build walks, refused and reported
 * with the same codes, and made real on disk with their modes, links and hardlinks, merged
 * into what the root holds and through the root's own links.
 *
 * Permission bits bind only a process without root's powers, so when the tests run as root
 * the parts about unreadable or read-only files run with the effective uid of nobody.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmod, link, lstat, mkdir, readFile, readdir, readlink, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { layDownSources } from "../../src/builder/stage.js";
import { hashFile } from "../../src/layer/hash-file.js";
import { walkSources, type SourceSpec } from "../../src/layer/sources.js";
import { GantryError } from "../../src/model/errors.js";
import { tmpDir } from "../helpers/tmp.js";

const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;

/** The code and message `promise` fails with; fails the test if it succeeds or throws a non-GantryError. */
async function failureOf(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof GantryError, `a GantryError, not ${String(err)}`);
    return { code: err.code, message: err.message };
  }
  assert.fail("it should have failed");
}

/** Asserts staging `sources` fails exactly as walking them does, with `code`, and leaves the root untouched. */
async function failsAsTheWalkDoes(sources: SourceSpec[], root: string, code: string, naming: string): Promise<void> {
  const walked = await failureOf(walkSources(sources));
  const staged = await failureOf(layDownSources(sources, root));
  assert.equal(walked.code, code, walked.message);
  assert.ok(walked.message.includes(naming), walked.message);
  assert.deepEqual(staged, walked, "staging fails with the walk's code and message");
  assert.deepEqual(await readdir(root), [], "nothing is laid down before the sources are known to be good");
}

/**
 * Runs `body` with permission bits binding: as is when not root; as root, with the
 * effective uid and gid of nobody, `dir` (and all below it) made nobody's first.
 */
async function withoutRootPowers<T>(dir: string, body: () => Promise<T>): Promise<T> {
  if (!asRoot) return body();
  execFileSync("chown", ["-R", `${NOBODY}:${NOBODY}`, dir]);
  process.setegid?.(NOBODY);
  process.seteuid?.(NOBODY);
  try {
    return await body();
  } finally {
    process.seteuid?.(0);
    process.setegid?.(0);
  }
}

async function emptyRoot(t: TestContext): Promise<{ dir: string; root: string }> {
  const dir = await tmpDir(t);
  const root = join(dir, "root");
  await mkdir(root);
  return { dir, root };
}

test("a missing source, an unreadable directory and a file laid at / fail as the walk does", async (t) => {
  const { dir, root } = await emptyRoot(t);
  await failsAsTheWalkDoes([{ from: join(dir, "missing"), to: "/" }], root, "SOURCE_UNREADABLE", join(dir, "missing"));

  await writeFile(join(dir, "file"), "x");
  await failsAsTheWalkDoes([{ from: join(dir, "file"), to: "/" }], root, "SPEC_INVALID", join(dir, "file"));

  const src = join(dir, "src");
  await mkdir(join(src, "locked"), { recursive: true });
  await writeFile(join(src, "a-file"), "laid before the locked directory, were it laid as walked\n");
  await chmod(join(src, "locked"), 0o000);
  await withoutRootPowers(dir, () =>
    failsAsTheWalkDoes([{ from: src, to: "/" }], root, "SOURCE_UNREADABLE", join(src, "locked")));
});

test("an unreadable source file is SOURCE_UNREADABLE naming it, as when its bytes are read for a layer", async (t) => {
  const { dir, root } = await emptyRoot(t);
  const src = join(dir, "src");
  await mkdir(src);
  await writeFile(join(src, "secret"), "no one may read this\n");
  await chmod(join(src, "secret"), 0o000);
  await withoutRootPowers(dir, async () => {
    const tree = await walkSources([{ from: src, to: "/" }]);
    const packed = await failureOf(hashFile(tree.get("secret")?.hostPath ?? ""));
    const staged = await failureOf(layDownSources([{ from: src, to: "/" }], root));
    assert.equal(packed.code, "SOURCE_UNREADABLE");
    assert.equal(staged.code, "SOURCE_UNREADABLE", staged.message);
    assert.ok(staged.message.includes(join(src, "secret")), staged.message);
    const single = await failureOf(layDownSources([{ from: join(src, "secret"), to: "/etc/secret" }], root));
    assert.equal(single.code, "SOURCE_UNREADABLE", single.message);
  });
});

test("names reserved for whiteouts are refused as the walk refuses them", async (t) => {
  const { dir, root } = await emptyRoot(t);
  const src = join(dir, "src");
  await mkdir(join(src, "deep"), { recursive: true });
  await writeFile(join(src, "deep", ".wh.sneaky"), "");
  await failsAsTheWalkDoes([{ from: src, to: "/" }], root, "UNSAFE_PATH", join(src, "deep", ".wh.sneaky"));

  const clean = join(dir, "clean");
  await mkdir(clean);
  await failsAsTheWalkDoes([{ from: clean, to: "/opt/.wh.app" }], root, "UNSAFE_PATH", "/opt/.wh.app");
});

test("hardlinked source files stay hardlinked, within and across sources, unless a later source replaces one", async (t) => {
  const { dir, root } = await emptyRoot(t);
  const a = join(dir, "a");
  await mkdir(join(a, "bin"), { recursive: true });
  await writeFile(join(a, "bin", "tool"), "one program, three names\n", { mode: 0o750 });
  await link(join(a, "bin", "tool"), join(a, "bin", "tool-alias"));
  await link(join(a, "bin", "tool"), join(a, "bin", "replaced"));
  const b = join(dir, "b");
  await mkdir(join(b, "bin"), { recursive: true });
  await writeFile(join(b, "bin", "replaced"), "a file of its own\n");
  await link(join(a, "bin", "tool"), join(dir, "third-name"));

  await layDownSources([{ from: a, to: "/" }, { from: b, to: "/" }, { from: join(dir, "third-name"), to: "/opt/tool" }], root);

  const [tool, alias, other, replaced] = await Promise.all(
    ["bin/tool", "bin/tool-alias", "opt/tool", "bin/replaced"].map((p) => lstat(join(root, p))));
  assert.equal(alias?.ino, tool?.ino, "two names in one source");
  assert.equal(other?.ino, tool?.ino, "a name from another source");
  assert.equal(tool?.nlink, 3);
  assert.equal((tool?.mode ?? 0) & 0o7777, 0o750);
  assert.notEqual(replaced?.ino, tool?.ino, "a later source's file is not linked to the group");
  assert.equal(await readFile(join(root, "bin", "replaced"), "utf8"), "a file of its own\n");
  assert.equal(await readFile(join(root, "opt", "tool"), "utf8"), "one program, three names\n");
});

test("sources merge into the root and through its links: lib/x lands in usr/lib/x and lib stays a link", async (t) => {
  const { dir, root } = await emptyRoot(t);
  await mkdir(join(root, "usr", "lib"), { recursive: true });
  await mkdir(join(root, "usr", "gantry-test-bin"), { recursive: true });
  await writeFile(join(root, "usr", "lib", "base.so"), "from the base\n");
  await symlink("usr/lib", join(root, "lib"));
  await symlink("/usr/gantry-test-bin", join(root, "bin"), "dir");
  await writeFile(join(root, "opt"), "a file where a source needs a directory\n");

  const src = join(dir, "src");
  await mkdir(join(src, "lib", "sub"), { recursive: true });
  await mkdir(join(src, "bin"), { recursive: true });
  await writeFile(join(src, "lib", "x"), "x\n", { mode: 0o640 });
  await writeFile(join(src, "lib", "sub", "y"), "y\n");
  await writeFile(join(src, "bin", "tool"), "#!/bin/sh\n", { mode: 0o755 });
  await symlink("../lib/x", join(src, "bin", "x-link"));
  execFileSync("mkfifo", ["-m", "0640", join(src, "pipe")]);
  const extra = join(dir, "extra");
  await mkdir(extra);
  await writeFile(join(extra, "z"), "z\n");

  const madeForTo = await layDownSources([
    { from: src, to: "/" }, { from: extra, to: "/lib/extra" }, { from: extra, to: "/opt/extra" },
  ], root);

  assert.equal(await readlink(join(root, "lib")), "usr/lib", "the root's relative link survives");
  assert.equal(await readlink(join(root, "bin")), "/usr/gantry-test-bin", "the root's absolute link survives");
  assert.equal(await readFile(join(root, "usr/lib/x"), "utf8"), "x\n");
  assert.equal((await lstat(join(root, "usr/lib/x"))).mode & 0o7777, 0o640);
  assert.equal(await readFile(join(root, "usr/lib/sub/y"), "utf8"), "y\n");
  assert.equal(await readFile(join(root, "usr/lib/base.so"), "utf8"), "from the base\n", "the base's files stay");
  assert.equal(await readFile(join(root, "usr/lib/extra/z"), "utf8"), "z\n", "a `to` through a link of the root");
  assert.equal(await readFile(join(root, "usr/gantry-test-bin/tool"), "utf8"), "#!/bin/sh\n", "an absolute link is followed inside the root");
  assert.equal(await readlink(join(root, "usr/gantry-test-bin/x-link")), "../lib/x", "a source's link is copied, not followed");
  assert.ok((await lstat(join(root, "pipe"))).isFIFO());
  assert.equal((await lstat(join(root, "pipe"))).mode & 0o7777, 0o640);
  assert.ok((await lstat(join(root, "opt"))).isDirectory(), "a directory replaces the base's file");
  assert.equal(await readFile(join(root, "opt/extra/z"), "utf8"), "z\n");
  assert.deepEqual(madeForTo, ["opt"], "made only to hold a `to`: not lib (the root had it), not the `to`s themselves");
});

test("a read-only source directory is copied with its children, then given its mode", async (t) => {
  const { dir, root } = await emptyRoot(t);
  const src = join(dir, "src");
  await mkdir(join(src, "ro", "sub"), { recursive: true });
  await writeFile(join(src, "ro", "f"), "in a read-only directory\n", { mode: 0o444 });
  await writeFile(join(src, "ro", "sub", "g"), "deeper\n");
  await chmod(join(src, "ro", "sub"), 0o500);
  await chmod(join(src, "ro"), 0o555);

  await withoutRootPowers(dir, () => layDownSources([{ from: src, to: "/" }, { from: join(src, "ro"), to: "/copy" }], root));

  for (const at of ["ro", "copy"]) {
    assert.equal((await lstat(join(root, at))).mode & 0o7777, 0o555, at);
    assert.equal((await lstat(join(root, at, "sub"))).mode & 0o7777, 0o500, `${at}/sub`);
    assert.equal((await lstat(join(root, at, "f"))).mode & 0o7777, 0o444, `${at}/f`);
    assert.equal(await readFile(join(root, at, "f"), "utf8"), "in a read-only directory\n");
    assert.equal(await readFile(join(root, at, "sub", "g"), "utf8"), "deeper\n");
  }
});

test("an owner is given before the mode, so setuid and setgid bits survive", { skip: !asRoot && "needs root to chown" }, async (t) => {
  const { dir, root } = await emptyRoot(t);
  const src = join(dir, "src");
  await mkdir(join(src, "shared"), { recursive: true });
  await writeFile(join(src, "su"), "#!/bin/sh\n");
  await chmod(join(src, "su"), 0o4755);
  await chmod(join(src, "shared"), 0o2775);
  await symlink("su", join(src, "su-link"));

  await layDownSources([{ from: src, to: "/" }], root, { owner: { uid: 1234, gid: 5678 } });

  for (const [path, mode] of [["su", 0o4755], ["shared", 0o2775]] as const) {
    const st = await lstat(join(root, path));
    assert.equal(st.mode & 0o7777, mode, path);
    assert.deepEqual([st.uid, st.gid], [1234, 5678], path);
  }
  const linkSt = await lstat(join(root, "su-link"));
  assert.deepEqual([linkSt.uid, linkSt.gid], [1234, 5678], "the link itself is owned");
});
