/**
 * exportImage on the three-layer image of make.py (python3 tarfile): what survives
 * flattening, with which attributes, as a directory and as a tar; the tar is judged
 * by GNU tar (listing and extraction), not by gantry's reader.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { lstat, mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { exportImage } from "../../src/ops/export.js";
import { listTar, sha256File } from "../helpers/archive.js";
import { tmpDir } from "../helpers/tmp.js";
import { have, run } from "../helpers/tools.js";
import { makeLayeredArchive, mtimesOf, snapshotTree } from "./export-fixtures.js";

const EPOCH = 946684800;
const asRoot = process.getuid?.() === 0;

test("a directory export applies whiteouts, the opaque marker and type changes, and keeps attributes", { skip: !have("python3") }, async (t) => {
  const dir = await tmpDir(t);
  const image = await makeLayeredArchive(join(dir, "layered.tar"));
  const out = join(dir, "rootfs");
  const result = await exportImage({ ref: image, output: out });
  assert.equal(result.format, "dir");
  assert.equal(result.layers, 3);

  const tree = await snapshotTree(out);
  const facts = (p: string) => {
    const f = tree.get(p);
    assert.ok(f, `${p} is exported`);
    return f;
  };
  const read = (p: string) => readFile(join(out, p), "utf8");

  // Deleted by layer 2, re-added as a symlink by layer 3.
  assert.deepEqual(facts("etc/doomed.txt"), { type: "l", mode: 0, uid: 0, gid: 0, link: "keep.txt" });
  // The opaque marker comes after the directory's new entries in the tar: they survive, the old ones do not.
  assert.deepEqual([...tree.keys()].filter((p) => p.startsWith("opt/data/")).sort(), ["opt/data/new1", "opt/data/newdir", "opt/data/newdir/deep"]);
  assert.equal(facts("opt/data").mode, 0o755, "layer 2's mode of the opaque directory");
  // A file that became a directory, a symlink that became a file, a directory that became a symlink.
  assert.equal(facts("var/thing").type, "d");
  assert.equal(facts("var/thing").mode, 0o705);
  assert.equal(await read("var/thing/inside"), "inside the new directory\n");
  assert.equal(facts("var/link").type, "-");
  assert.equal(facts("var/link").mode, 0o600);
  assert.equal(await read("var/link"), "was a symlink\n");
  assert.deepEqual(facts("srv/dir"), { type: "l", mode: 0, uid: 0, gid: 0, link: "/etc" });
  assert.equal(tree.has("srv/dir/child"), false);
  // A hardlink whose target a higher layer replaced keeps the bytes it was made with.
  assert.equal(await read("etc/orig"), "layer 3 bytes\n");
  assert.equal(facts("etc/orig").mode, 0o600);
  assert.equal(await read("etc/orig-link"), "layer 1 bytes, kept by the hardlink of layer 2\n");
  assert.equal(facts("etc/orig-link").mode, 0o644);
  assert.equal(facts("etc/orig-link").nlink, 1);
  // A hardlink whose target survives shares its inode.
  const [tool, toolHard] = await Promise.all([lstat(join(out, "bin/tool")), lstat(join(out, "bin/tool-hard"))]);
  assert.equal(tool.ino, toolHard.ino);
  assert.equal(tool.nlink, 2);
  assert.equal(facts("bin/suid").mode, 0o4755);
  assert.equal(facts("empty").mode, 0o711);
  assert.deepEqual(await readdir(join(out, "empty")), []);
  assert.equal(facts("home/user").mode, 0o700);
  assert.equal(facts("run/fifo").type, "p");
  assert.equal(facts("run/fifo").mode, 0o600);
  if (asRoot) {
    assert.deepEqual([facts("etc/owned.txt").uid, facts("etc/owned.txt").gid], [1000, 1000]);
    assert.deepEqual([facts("home/user").uid, facts("home/user").gid], [1000, 1000]);
    assert.equal(facts("dev/null2").type, "c");
    assert.equal(facts("dev/null2").device, "1:3");
    assert.deepEqual(result.skippedDevices, []);
  } else {
    assert.equal(tree.has("dev/null2"), false);
    assert.deepEqual(result.skippedDevices, ["dev/null2"]);
  }
  assert.equal([...tree.keys()].some((p) => p.split("/").some((n) => n.startsWith(".wh."))), false, "no whiteout is exported");
  assert.equal((await lstat(out)).mode & 0o7777, 0o755, "the root directory");

  const mtimes = await mtimesOf(out, ["bin/tool", "etc/owned.txt", "opt/data/new1", "opt/data", "var/thing"]);
  assert.deepEqual(Object.fromEntries(mtimes), {
    "bin/tool": EPOCH + 10, "etc/owned.txt": EPOCH + 20, "opt/data/new1": EPOCH + 30, "opt/data": EPOCH, "var/thing": EPOCH,
  });
});

test("a tar export is deterministic, sorted, and extracts (GNU tar) to what the directory export holds", { skip: !have("python3") || !asRoot }, async (t) => {
  const dir = await tmpDir(t);
  const image = await makeLayeredArchive(join(dir, "layered.tar"));
  const [a, b] = [join(dir, "a.tar"), join(dir, "b.tar")];
  assert.equal((await exportImage({ ref: image, output: a })).format, "tar");
  await exportImage({ ref: `docker-archive:${image}`, output: b });
  assert.equal(await sha256File(a), await sha256File(b), "two exports give the same bytes");

  const entries = await listTar(a);
  const paths = entries.map((e) => e.path);
  assert.deepEqual(paths, [...paths].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))), "byte-sorted");
  assert.equal(new Set(paths).size, paths.length, "each path once");
  const byPath = new Map(entries.map((e) => [e.path, e]));
  assert.equal(byPath.get("bin/tool-hard")?.type, "h");
  assert.equal(byPath.get("bin/tool-hard")?.linkTarget, "bin/tool");
  assert.equal(byPath.get("etc/orig-link")?.type, "-", "an orphaned hardlink becomes a file of its own");
  assert.equal(byPath.get("etc/owned.txt")?.uid, 1000);
  assert.equal(byPath.get("opt/data/new1")?.mtime, EPOCH + 30);

  const fromDir = join(dir, "dir");
  await exportImage({ ref: image, output: fromDir });
  const fromTar = join(dir, "untarred");
  await mkdir(fromTar);
  await run("tar", ["--numeric-owner", "--same-owner", "-xpf", a, "-C", fromTar]);
  assert.deepEqual(await snapshotTree(fromTar), await snapshotTree(fromDir));
});

test("exporting over an existing directory replaces it whole", { skip: !have("python3") }, async (t) => {
  const dir = await tmpDir(t);
  const image = await makeLayeredArchive(join(dir, "layered.tar"));
  const out = join(dir, "rootfs");
  await mkdir(out);
  await writeFile(join(out, "stale"), "from before");
  await exportImage({ ref: image, output: out });
  await assert.rejects(lstat(join(out, "stale")), /ENOENT/);
  assert.ok((await lstat(join(out, "etc/keep.txt"))).isFile());
  assert.deepEqual((await readdir(dir)).sort(), ["layered.tar", "rootfs"], "no temporary directory is left beside it");
});
