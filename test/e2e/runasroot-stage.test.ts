/**
 * Staging a layer on disk (src/builder/stage.ts), which extraCommands and runAsRoot work
 * in: the copyToRoot sources copied in order with modes, symlinks and hardlinks kept;
 * symlinks of the root (a base) followed inside it, never out of it; and, end to end,
 * runAsRoot on a merged-/usr base storing a file laid under /lib in /usr/lib.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod, link, lstat, mkdir, readFile, readdir, readlink, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { layDownSources } from "../../src/builder/stage.js";
import { fixtureBases } from "../helpers/bases.js";
import { runGantry } from "../helpers/gantry.js";
import { newLayerEntries } from "../helpers/image-checks.js";
import { tmpDir } from "../helpers/tmp.js";
import { peerTest, requireRoot, requireTools, runcRun, unpackWithPeers } from "../helpers/tools.js";

const bases = fixtureBases();

test("sources are laid in order, keeping modes, symlinks and hardlinks, and following the root's links inside it", async (t) => {
  const dir = await tmpDir(t);
  const root = join(dir, "root");
  const sentinel = join(dir, "sentinel");
  await mkdir(join(root, "usr", "lib"), { recursive: true });
  await mkdir(sentinel);
  await symlink("usr/lib", join(root, "lib"));
  await symlink(sentinel, join(root, "away"));

  const a = join(dir, "a");
  await mkdir(join(a, "lib", "sub"), { recursive: true });
  await mkdir(join(a, "app"), { recursive: true });
  await mkdir(join(a, "away"), { recursive: true });
  await mkdir(join(a, "ro"), { recursive: true });
  await writeFile(join(a, "lib", "x"), "x\n", { mode: 0o640 });
  await writeFile(join(a, "lib", "sub", "y"), "y\n");
  await writeFile(join(a, "app", "run.sh"), "#!/bin/sh\n", { mode: 0o755 });
  await symlink("run.sh", join(a, "app", "link"));
  await writeFile(join(a, "app", "hard1"), "shared\n");
  await link(join(a, "app", "hard1"), join(a, "app", "hard2"));
  await writeFile(join(a, "away", "escaped"), "must stay inside the root\n");
  await writeFile(join(a, "ro", "f"), "in a read-only directory\n");
  await chmod(join(a, "ro"), 0o555);
  const b = join(dir, "b");
  await mkdir(join(b, "app"), { recursive: true });
  await writeFile(join(b, "app", "link"), "a later source wins\n");
  const single = join(dir, "single.txt");
  await writeFile(single, "one file\n", { mode: 0o600 });

  const madeForTo = await layDownSources([
    { from: a, to: "/" }, { from: b, to: "/" }, { from: b, to: "/opt/b" }, { from: single, to: "/etc/single.txt" },
  ], root);

  assert.equal(await readlink(join(root, "lib")), "usr/lib", "the root's link survives");
  assert.equal(await readFile(join(root, "usr/lib/x"), "utf8"), "x\n");
  assert.equal((await lstat(join(root, "usr/lib/x"))).mode & 0o7777, 0o640);
  assert.equal(await readFile(join(root, "usr/lib/sub/y"), "utf8"), "y\n");
  assert.equal((await lstat(join(root, "app/run.sh"))).mode & 0o7777, 0o755);
  assert.equal(await readFile(join(root, "app/link"), "utf8"), "a later source wins\n");
  assert.ok((await lstat(join(root, "app/link"))).isFile());
  const [h1, h2] = await Promise.all([lstat(join(root, "app/hard1")), lstat(join(root, "app/hard2"))]);
  assert.equal(h1.ino, h2.ino, "hardlinked sources stay hardlinked");
  assert.equal((await lstat(join(root, "ro"))).mode & 0o7777, 0o555);
  assert.equal(await readFile(join(root, "ro/f"), "utf8"), "in a read-only directory\n");
  assert.deepEqual(await readdir(sentinel), [], "a link of the root pointing outside is never followed out");
  assert.equal(await readFile(join(root, "away/escaped"), "utf8"), "must stay inside the root\n");
  assert.equal(await readFile(join(root, "opt/b/app/link"), "utf8"), "a later source wins\n");
  assert.equal((await lstat(join(root, "etc/single.txt"))).mode & 0o7777, 0o600);
  // opt/b is the destination itself and holds b's mode, as in a direct walk; only its parents were made to hold it.
  assert.deepEqual(madeForTo.sort(), ["etc", "opt"], "directories made only to hold a destination");
});

peerTest("runAsRoot on a merged-/usr base: a file laid under /lib is stored in /usr/lib and /lib stays a link", async (t) => {
  requireRoot();
  requireTools("runc");
  const base = await bases.mergedUsr();
  const dir = await tmpDir(t);
  await mkdir(join(dir, "root", "lib"), { recursive: true });
  await writeFile(join(dir, "root", "lib", "x"), "x\n");
  await writeFile(join(dir, "spec.json"), JSON.stringify({
    name: "gantry-test/usr", tag: "1", fromImage: base.ref, copyToRoot: "root",
    runAsRoot: "set -e; test -L /lib; test -f /usr/lib/x; echo ran > /usr/lib/ran",
    config: { Cmd: ["/bin/sh", "-c", "cat /lib/x /lib/ran /usr/lib/base-lib.txt"] },
  }));
  const out = join(dir, "out.tar");
  const r = await runGantry(["build", join(dir, "spec.json"), "-o", out]);
  assert.equal(r.code, 0, r.stderr);
  const paths = (await newLayerEntries(out, dir)).map((e) => e.path);
  assert.deepEqual(paths.sort(), ["usr/lib/ran", "usr/lib/x"]);
  const { bundle } = await unpackWithPeers(`docker-archive:${out}`, await tmpDir(t));
  assert.equal(await runcRun(bundle), "x\nran\na library of the base\n");
});
