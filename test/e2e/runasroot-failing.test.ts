/**
 * A runAsRoot script that fails: the build exits 1 with one `gantry:` line giving the
 * script's status and the tail of its output, and the destination is left as it was
 * (an existing file keeps its bytes; nothing is written beside it). Without root (the
 * script then runs in a user namespace, see runasroot-rootless.test.ts) it fails the same
 * way, and the staging root is removed.
 */
import assert from "node:assert/strict";
import { chmod, copyFile, lstat, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { fixtureBases } from "../helpers/bases.js";
import { runGantry } from "../helpers/gantry.js";
import { tmpDir } from "../helpers/tmp.js";
import { peerTest, requireRoot, requireTools } from "../helpers/tools.js";

const bases = fixtureBases();

const SCRIPT = [
  "for i in $(seq 1 30); do echo \"progress line $i\"; done",
  "echo 'about to fail' >&2",
  "rm /etc/base.txt",
  "exit 3",
].join("\n");

peerTest("a failing script fails the build with its status and output tail, leaving the destination untouched", async (t) => {
  requireRoot();
  requireTools("runc");
  const base = await bases.busyboxArchive();
  const dir = await tmpDir(t);
  await writeFile(join(dir, "spec.json"), JSON.stringify({ name: "gantry-test/fails", tag: "1", fromImage: base.ref, runAsRoot: SCRIPT }));
  const out = join(dir, "out.tar");
  await writeFile(out, "the previous output\n");

  const r = await runGantry(["build", join(dir, "spec.json"), "-o", out]);
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.split("\n").filter((l) => l.startsWith("gantry: "));
  assert.equal(lines.length, 1, `one gantry: line in ${JSON.stringify(r.stderr)}`);
  const line = lines[0] ?? "";
  assert.match(line, /runAsRoot script exited with status 3/);
  assert.match(line, /about to fail/, "stderr of the script is in the tail");
  assert.match(line, /progress line 30/, "the last lines are kept");
  assert.doesNotMatch(line, /progress line 5\b/, "early lines are dropped: only the tail is shown");
  assert.equal(await readFile(out, "utf8"), "the previous output\n", "the destination is untouched");
  assert.deepEqual((await readdir(dir)).sort(), ["out.tar", "spec.json"], "nothing is left beside it");
});

peerTest("without root, a failing script fails the same way in a user namespace, and nothing is left behind", async (t) => {
  requireRoot();
  requireTools("setpriv", "unshare");
  const base = await bases.busyboxArchive();
  const dir = await tmpDir(t);
  await chmod(dir, 0o777);
  // The fixture's own directory is private to root: the unprivileged build reads a copy.
  await copyFile(base.ref, join(dir, "base.tar"));
  await chmod(join(dir, "base.tar"), 0o644);
  await writeFile(join(dir, "spec.json"), JSON.stringify({ name: "gantry-test/fails", tag: "1", fromImage: "base.tar", runAsRoot: SCRIPT }));
  const before = new Set(await readdir(tmpdir()));
  const r = await runGantry(["build", join(dir, "spec.json"), "-o", join(dir, "out.tar")], {
    prefix: ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"],
    env: { GANTRY_CACHE: join(dir, "cache"), HOME: dir, TMPDIR: undefined },
  });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^runAsRoot as the ordinary user nobody: .*only id 0 exists/m, "the progress line says how it runs");
  const lines = r.stderr.split("\n").filter((l) => l.startsWith("gantry: "));
  assert.equal(lines.length, 1, `one gantry: line in ${JSON.stringify(r.stderr)}`);
  assert.match(lines[0] ?? "", /^gantry: the runAsRoot script exited with status 3; its last output: .*progress line 30.*about to fail/);
  assert.deepEqual((await readdir(dir)).filter((n) => n !== "cache").sort(), ["base.tar", "spec.json"]);
  const fresh = (await readdir(tmpdir())).filter((n) => !before.has(n) && /^gantry-(rootfs|rootless)-/.test(n));
  const ours = [];
  for (const name of fresh) if ((await lstat(join(tmpdir(), name)).catch(() => undefined))?.uid === 65534) ours.push(name);
  assert.deepEqual(ours, [], "the staging root and the agent's job are removed");
});

peerTest("runAsRoot on an image without /bin/sh is refused before any sandbox starts", async (t) => {
  requireRoot();
  const dir = await tmpDir(t);
  await writeFile(join(dir, "spec.json"), JSON.stringify({ name: "gantry-test/noshell", tag: "1", runAsRoot: "true" }));
  const r = await runGantry(["build", join(dir, "spec.json"), "-o", join(dir, "out.tar")]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^gantry: runAsRoot runs the image's own \/bin\/sh, which the image \(base and copyToRoot\) does not have; .*$/m);
  assert.deepEqual(await readdir(dir), ["spec.json"]);
});
