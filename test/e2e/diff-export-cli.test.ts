import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readFile, writeFile, symlink } from "node:fs/promises";
import { join } from "node:path";
import { runGantry } from "../helpers/gantry.js";
import { tmpDir } from "../helpers/tmp.js";

test("gantry diff lists what a second image adds, removes and changes", async (t) => {
  const dir = await tmpDir(t);
  await mkdir(join(dir, "r1/etc"), { recursive: true });
  await writeFile(join(dir, "r1/etc/conf"), "one\n");
  await writeFile(join(dir, "r1/etc/keep"), "same\n");
  await symlink("conf", join(dir, "r1/etc/link"));
  await writeFile(join(dir, "a.json"), JSON.stringify({ name: "a", tag: "1", copyToRoot: ["./r1"] }));
  await mkdir(join(dir, "r2/etc"), { recursive: true });
  await mkdir(join(dir, "r2/srv"), { recursive: true });
  await writeFile(join(dir, "r2/etc/conf"), "two\n");
  await writeFile(join(dir, "r2/srv/new"), "n\n");
  await writeFile(join(dir, "b.json"), JSON.stringify({ name: "b", tag: "1", fromImage: "./a.tar", copyToRoot: ["./r2"], perms: [{ path: "/etc/keep", mode: "0600" }] }));
  // perms applies to what the layer stores; etc/keep must be laid again for its mode to change.
  await writeFile(join(dir, "r2/etc/keep"), "same\n");
  for (const spec of ["a", "b"]) {
    const r = await runGantry(["build", join(dir, `${spec}.json`), "-o", join(dir, `${spec}.tar`), "--quiet"]);
    assert.equal(r.code, 0, r.stderr);
  }
  const json = await runGantry(["diff", join(dir, "a.tar"), join(dir, "b.tar"), "--json", "--quiet"]);
  assert.equal(json.code, 0, json.stderr);
  const result = JSON.parse(json.stdout.toString()) as { added: string[]; removed: string[]; changed: { path: string; attributes: string[] }[] };
  assert.deepEqual(result.added, ["srv", "srv/new"]);
  assert.deepEqual(result.removed, []);
  assert.deepEqual(result.changed, [
    { path: "etc/conf", attributes: ["content"] },
    { path: "etc/keep", attributes: ["mode"] },
  ]);

  const human = await runGantry(["diff", join(dir, "a.tar"), join(dir, "b.tar"), "--quiet"]);
  assert.equal(human.stdout.toString(), "M /etc/conf (content)\nM /etc/keep (mode)\nA /srv\nA /srv/new\n");
  assert.equal(human.stderr, "");
});

test("gantry diff of a missing image fails with one gantry: line", async (t) => {
  const dir = await tmpDir(t);
  const r = await runGantry(["diff", join(dir, "nope.tar"), join(dir, "nope2.tar"), "--quiet"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^gantry: .*nope\.tar.*\n$/);
});

test("gantry export -o - streams the same deterministic tar as -o FILE.tar", async (t) => {
  const dir = await tmpDir(t);
  await mkdir(join(dir, "root/etc"), { recursive: true });
  await writeFile(join(dir, "root/etc/conf"), "x\n");
  await writeFile(join(dir, "s.json"), JSON.stringify({ name: "e", tag: "1", copyToRoot: ["./root"] }));
  assert.equal((await runGantry(["build", join(dir, "s.json"), "-o", join(dir, "e.tar"), "--quiet"])).code, 0);
  const file = await runGantry(["export", join(dir, "e.tar"), "-o", join(dir, "fs.tar"), "--quiet"]);
  assert.equal(file.code, 0, file.stderr);
  const piped = await runGantry(["export", join(dir, "e.tar"), "-o", "-", "--quiet", "--json"]);
  assert.equal(piped.code, 0, piped.stderr);
  assert.ok(piped.stdout.equals(await readFile(join(dir, "fs.tar"))), "stdout carries exactly the tar, nothing else");
  assert.ok(piped.stdout.includes(Buffer.from("etc/conf")));
});
