import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmod, link, mkdir, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { BlobStore } from "../../src/cache/blob-store.js";
import { packLayer } from "../../src/layer/pack.js";
import { diffLayer, type DiffOptions, type LayerEntry } from "../../src/layer/differ.js";
import { walkSources } from "../../src/layer/sources.js";
import { mergedTree } from "../../src/layer/merged-tree.js";
import type { FileTree } from "../../src/layer/tree.js";
import { layerOfTar, pythonTar, tempDir, type PyEntry } from "../fixtures/layer/helpers.js";

/** A small merged-/usr base, written by Python's tarfile. */
const BASE: PyEntry[] = [
  { name: "bin", type: "symlink", linkname: "usr/bin" },
  { name: "etc/", type: "dir" },
  { name: "etc/group", content: "root:x:0:\n" },
  { name: "etc/passwd", content: "root:x:0:0::/root:/bin/sh\n" },
  { name: "etc/hostname", content: "box\n" },
  { name: "lib", type: "symlink", linkname: "usr/lib" },
  { name: "opt/", type: "dir" },
  { name: "opt/x", content: "x" },
  { name: "opt/y/", type: "dir" },
  { name: "opt/y/z", content: "z" },
  { name: "tmp/", type: "dir", mode: 0o1777 },
  { name: "usr/", type: "dir" },
  { name: "usr/bin/", type: "dir" },
  { name: "usr/bin/sh", content: "shell", mode: 0o755 },
  { name: "usr/bin/sh2", type: "link", linkname: "usr/bin/sh" },
  { name: "usr/lib/", type: "dir" },
  { name: "usr/lib/libc.so", content: "libc" },
  { name: "var/", type: "dir" },
  { name: "var/cache/", type: "dir" },
  { name: "var/cache/a", content: "a" },
  { name: "var/cache/b", content: "b" },
];

const OPTS: DiffOptions = { uid: 0, gid: 0, uname: "", gname: "", mtime: 1_700_000_000, perms: [], deletions: false };

async function baseTree(dir: string, extra: PyEntry[] = []): Promise<FileTree> {
  const tar = join(dir, "base.tar");
  pythonTar(tar, [...BASE, ...extra]);
  return mergedTree([await layerOfTar(tar)]);
}

const summary = (entries: readonly LayerEntry[]): string[] =>
  entries.map((e) => `${e.type} ${e.path}${e.linkname !== undefined ? ` -> ${e.linkname}` : ""}`);

test("copyToRoot: identical paths left out, changed ones stored, base dirs not restated, lib/ rerouted", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const base = await baseTree(dir, [{ name: "diff-marker-1", content: "1" }]);
    const src = join(dir, "src");
    await mkdir(join(src, "etc"), { recursive: true });
    await writeFile(join(src, "etc/passwd"), "root:x:0:0::/root:/bin/sh\n"); // identical
    await writeFile(join(src, "etc/group"), "root:x:0:\nstaff:x:50:\n"); // changed content
    await writeFile(join(src, "etc/hostname"), "xyz\n"); // same size, other bytes
    await mkdir(join(src, "lib/firmware"), { recursive: true }); // lib is a base link to usr/lib
    await writeFile(join(src, "lib/libfoo.so"), "foo");
    await writeFile(join(src, "lib/libc.so"), "libc"); // identical once rerouted
    await writeFile(join(src, "lib/firmware/blob"), "fw");
    await mkdir(join(src, "usr/bin"), { recursive: true });
    await writeFile(join(src, "usr/bin/sh"), "shell");
    await chmod(join(src, "usr/bin/sh"), 0o700); // same content, other mode
    await symlink("usr/bin", join(src, "bin")); // identical symlink
    await mkdir(join(src, "app"));
    await writeFile(join(src, "app/run"), "run");
    await writeFile(join(src, "app/a"), "same inode");
    await link(join(src, "app/a"), join(src, "app/b"));
    await mkdir(join(src, "tmp"));
    await chmod(join(src, "tmp"), 0o1777); // equal to the base's
    await chmod(join(src, "etc"), 0o755);
    const entries = await diffLayer(base, await walkSources([{ from: src, to: "/" }]), OPTS);
    assert.deepEqual(summary(entries), [
      "dir app",
      "file app/a",
      "hardlink app/b -> app/a",
      "file app/run",
      "file etc/group",
      "file etc/hostname",
      "file usr/bin/sh",
      "dir usr/lib/firmware",
      "file usr/lib/firmware/blob",
      "file usr/lib/libfoo.so",
    ]);
    const sh = entries.find((e) => e.path === "usr/bin/sh");
    assert.equal(sh?.mode, 0o700);
    assert.deepEqual(sh?.content, { kind: "hostFile", path: join(src, "usr/bin/sh") });
    for (const e of entries) {
      assert.equal(e.mtime, OPTS.mtime);
      assert.equal(e.uid, 0);
    }
    const hard = entries.find((e) => e.path === "app/b");
    assert.equal(hard?.content, undefined);
    assert.equal(hard?.size, 0);

    // applied on the base, the layer keeps the merged-/usr link and puts the library behind it
    const layer = await packLayer(entries, { compression: "none", store: new BlobStore(join(dir, "store")), describe: "copyToRoot layer" });
    const merged = await mergedTree([await layerOfTar(join(dir, "base.tar")), layer]);
    assert.equal(merged.get("lib")?.type, "symlink");
    assert.equal(merged.get("usr/lib/libfoo.so")?.layerIndex, 1);
    assert.equal(merged.get("usr/lib/libc.so")?.layerIndex, 0);
  } finally {
    await cleanup();
  }
});

test("a changed owner or mode restates a base directory; perms rules apply, later rules winning", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const base = await baseTree(dir, [{ name: "diff-marker-2", content: "2" }]);
    const src = join(dir, "src");
    await mkdir(join(src, "opt"), { recursive: true });
    await mkdir(join(src, "etc"), { recursive: true });
    await writeFile(join(src, "opt/tool"), "tool");
    await writeFile(join(src, "opt/x"), "x");
    const tree = await walkSources([{ from: src, to: "/" }]);
    const entries = await diffLayer(base, tree, {
      ...OPTS,
      uname: "root",
      gname: "root",
      perms: [
        { path: "/opt/**", mode: 0o750 },
        { path: "/opt/tool", uid: 1000 },
        { path: "opt", mode: 0o711 },
      ],
    });
    assert.deepEqual(entries.map((e) => [e.path, e.mode, e.uid, e.uname, e.gname]), [
      ["opt", 0o711, 0, "root", "root"],
      ["opt/tool", 0o750, 1000, "", "root"],
      ["opt/x", 0o750, 0, "root", "root"],
    ]);
    // the same source, owned by someone else: every path differs from the root-owned base
    const owned = await diffLayer(base, tree, { ...OPTS, uid: 1, gid: 1 });
    assert.deepEqual(summary(owned), ["dir etc", "dir opt", "file opt/tool", "file opt/x"]);
  } finally {
    await cleanup();
  }
});

test("a source directory where the base has a link to a directory is not stored; `to` parents only when missing", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const base = await baseTree(dir, [{ name: "diff-marker-3", content: "3" }]);
    const app = join(dir, "app");
    await mkdir(join(app, "bin"), { recursive: true });
    await writeFile(join(app, "bin/x"), "x");
    const entries = await diffLayer(base, await walkSources([
      { from: app, to: "/" },
      { from: app, to: "/usr/share/app" },
      { from: app, to: "/opt/y/app" },
    ]), OPTS);
    assert.deepEqual(summary(entries), [
      "dir opt/y/app", "dir opt/y/app/bin", "file opt/y/app/bin/x",
      "file usr/bin/x",
      "dir usr/share", "dir usr/share/app", "dir usr/share/app/bin", "file usr/share/app/bin/x",
    ]);
  } finally {
    await cleanup();
  }
});

test("two source paths landing on one image path: the one that was not rerouted wins, whichever comes first", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    // lib/ is a base link to usr/lib, sorting before it; x11/ one to opt/y, sorting after it.
    const base = await baseTree(dir, [{ name: "x11", type: "symlink", linkname: "opt/y" }]);
    const src = join(dir, "src");
    for (const d of ["lib", "usr/lib", "opt/y", "x11"]) await mkdir(join(src, d), { recursive: true });
    await writeFile(join(src, "lib/dup.so"), "through the link, first");
    await writeFile(join(src, "usr/lib/dup.so"), "at its own path, second");
    await writeFile(join(src, "opt/y/dup"), "at its own path, first");
    await writeFile(join(src, "x11/dup"), "through the link, second");
    await writeFile(join(src, "lib/only.so"), "only through the link");
    const entries = await diffLayer(base, await walkSources([{ from: src, to: "/" }]), OPTS);
    assert.deepEqual(summary(entries), ["file opt/y/dup", "file usr/lib/dup.so", "file usr/lib/only.so"]);
    const from = (path: string): unknown => entries.find((e) => e.path === path)?.content;
    assert.deepEqual(from("usr/lib/dup.so"), { kind: "hostFile", path: join(src, "usr/lib/dup.so") });
    assert.deepEqual(from("opt/y/dup"), { kind: "hostFile", path: join(src, "opt/y/dup") });
    assert.deepEqual(from("usr/lib/only.so"), { kind: "hostFile", path: join(src, "lib/only.so") });
  } finally {
    await cleanup();
  }
});

test("runAsRoot: deletions become whiteouts, an emptied and refilled directory the opaque marker", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const tar = join(dir, "base.tar");
    pythonTar(tar, [...BASE, { name: "diff-marker-4", content: "4" }]);
    const base = await mergedTree([await layerOfTar(tar)]);
    const root = join(dir, "root");
    await mkdir(root);
    execFileSync("tar", ["-C", root, "-xpf", tar]);
    const unchanged = await diffLayer(base, await walkSources([{ from: root, to: "/" }]), { ...OPTS, deletions: true });
    assert.deepEqual(summary(unchanged), [], "an untouched root gives an empty layer");

    await rm(join(root, "etc/passwd"));
    await rm(join(root, "var/cache/a"));
    await rm(join(root, "var/cache/b"));
    await writeFile(join(root, "var/cache/new"), "new");
    await rm(join(root, "opt"), { recursive: true });
    await writeFile(join(root, "opt"), "opt is a file");
    await rm(join(root, "usr/lib"), { recursive: true });
    await rm(join(root, "lib"));
    await mkdir(join(root, "lib"));
    await writeFile(join(root, "lib/real"), "real dir now");
    const entries = await diffLayer(base, await walkSources([{ from: root, to: "/" }]), { ...OPTS, deletions: true });
    assert.deepEqual(summary(entries), [
      "file etc/.wh.passwd",
      "dir lib",
      "file lib/real",
      "file opt",
      "file usr/.wh.lib",
      "file var/cache/.wh..wh..opq",
      "file var/cache/new",
    ]);
    const wh = entries[0];
    assert.equal(wh?.size, 0);
    assert.equal(wh?.content, undefined);
  } finally {
    await cleanup();
  }
});

test("round trip: base + the packed diff merges back into exactly the source root", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const tar = join(dir, "base.tar");
    pythonTar(tar, [...BASE, { name: "diff-marker-5", content: "5" }]);
    const baseLayer = await layerOfTar(tar);
    const base = await mergedTree([baseLayer]);
    const root = join(dir, "root");
    await mkdir(root);
    execFileSync("tar", ["-C", root, "-xpf", tar]);
    await rm(join(root, "etc/passwd"));
    await rm(join(root, "var/cache"), { recursive: true });
    await mkdir(join(root, "var/cache"));
    await writeFile(join(root, "var/cache/fresh"), "fresh");
    await rm(join(root, "opt/y"), { recursive: true });
    await writeFile(join(root, "opt/y"), "y is a file");
    await writeFile(join(root, "usr/bin/sh"), "new shell");
    await chmod(join(root, "tmp"), 0o755);
    const source = await walkSources([{ from: root, to: "/" }]);
    const entries = await diffLayer(base, source, { ...OPTS, deletions: true });
    const store = new BlobStore(join(dir, "store"));
    const layer = await packLayer(entries, { compression: "gzip", store, describe: "the runAsRoot layer" });
    const merged = await mergedTree([baseLayer, layer]);
    assert.deepEqual([...merged.paths()], [...source.paths()]);
    assert.deepEqual(summary(await diffLayer(merged, source, { ...OPTS, deletions: true })), []);
    assert.equal(merged.get("usr/bin/sh2")?.linkname, "usr/bin/sh", "the changed file's hardlink group is stored whole");
  } finally {
    await cleanup();
  }
});
