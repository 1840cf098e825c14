import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, writeFile, symlink } from "node:fs/promises";
import { join } from "node:path";
import { mergedTree } from "../../src/layer/merged-tree.js";
import { FileTree } from "../../src/layer/tree.js";
import { sha256 } from "../../src/model/digest.js";
import { GantryError } from "../../src/model/errors.js";
import type { Layer } from "../../src/model/image.js";
import { makeLayer } from "../../src/image/layer.js";
import { layerOfTar, pythonTar, pythonTars, tempDir, type PyEntry } from "../fixtures/layer/helpers.js";

const code = (c: string) => (err: unknown): boolean => err instanceof GantryError && err.code === c;

/** Counts how often each layer is read, to check memoization. */
function counting(layer: Layer, counts: Map<string, number>): Layer {
  return {
    ...layer,
    open: layer.open,
    openUncompressed: (signal?: AbortSignal) => {
      counts.set(layer.diffId, (counts.get(layer.diffId) ?? 0) + 1);
      return layer.openUncompressed(signal);
    },
  };
}

const BASE: PyEntry[] = [
  { name: "./", type: "dir" },
  { name: "./bin/", type: "dir" },
  { name: "./bin/sh", content: "shell", mode: 0o755 },
  { name: "./bin/sh2", type: "link", linkname: "./bin/sh" },
  { name: "./etc/", type: "dir" },
  { name: "./etc/group", content: "root:x:0:" },
  { name: "./etc/passwd", content: "root:x:0:0::/root:/bin/sh" },
  { name: "./etc/link-to-file", type: "symlink", linkname: "group" },
  { name: "./lib", type: "symlink", linkname: "usr/lib" },
  { name: "./lib64", type: "symlink", linkname: "/usr/lib" },
  { name: "./loop1", type: "symlink", linkname: "loop2" },
  { name: "./loop2", type: "symlink", linkname: "/loop1" },
  { name: "./dangling", type: "symlink", linkname: "nowhere" },
  { name: "./opt/", type: "dir", mode: 0o700, uid: 5, gid: 6 },
  { name: "./opt/x", content: "x" },
  { name: "./usr/", type: "dir" },
  { name: "./usr/lib/", type: "dir" },
  { name: "./usr/lib/libc.so", content: "libc" },
  { name: "./usr/lib64", type: "symlink", linkname: "../../../usr/lib" },
  { name: "./var/", type: "dir" },
  { name: "./var/cache/", type: "dir" },
  { name: "./var/cache/a", content: "a" },
  { name: "./var/cache/b/", type: "dir" },
  { name: "./var/cache/b/deep", content: "deep" },
  { name: "./dev/", type: "dir" },
  { name: "./dev/null", type: "char", devmajor: 1, devminor: 3, mode: 0o666 },
];

const UPPER: PyEntry[] = [
  { name: "etc/.wh.passwd", mode: 0 },
  { name: "etc/group", content: "root:x:0:\nstaff:x:50:" },
  // the layer's new child comes BEFORE the opaque marker: it must survive it
  { name: "var/cache/new", content: "new" },
  { name: "var/cache/.wh..wh..opq", mode: 0 },
  // a directory re-added as a file
  { name: "opt", content: "now a file" },
  // whiteout and re-add of one path in one layer: the layer's own entry survives
  { name: "usr/lib/libc.so", content: "libc 2" },
  { name: "usr/lib/.wh.libc.so" },
];

const TOP: PyEntry[] = [
  // the file becomes a directory again, with new contents only
  { name: "opt/", type: "dir" },
  { name: "opt/y", content: "y" },
];

test("mergedTree applies deletions, opaque markers and type changes in layer order", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    pythonTars({ [join(dir, "base.tar")]: BASE, [join(dir, "upper.tar")]: UPPER, [join(dir, "top.tar")]: TOP });
    const layers = await Promise.all(["base", "upper", "top"].map((n) => layerOfTar(join(dir, `${n}.tar`))));

    const base = await mergedTree(layers.slice(0, 1));
    assert.equal(base.get("etc/passwd")?.contentDigest, sha256("root:x:0:0::/root:/bin/sh"));
    assert.deepEqual(base.childrenOf("var/cache"), ["var/cache/a", "var/cache/b"]);
    assert.equal(base.get("opt")?.mode, 0o700);
    assert.equal(base.get("opt")?.uid, 5);
    assert.equal(base.has(""), false, "the root is implicit");
    const dev = base.get("dev/null");
    assert.deepEqual([dev?.type, dev?.devmajor, dev?.devminor, dev?.mode], ["char", 1, 3, 0o666]);
    const sh2 = base.get("bin/sh2");
    assert.equal(sh2?.type, "hardlink");
    assert.equal(sh2?.linkname, "bin/sh");
    assert.equal(sh2?.contentDigest, sha256("shell"));
    assert.equal(sh2?.mode, 0o755, "a hardlink shares its target's inode, mode included");

    const two = await mergedTree(layers.slice(0, 2));
    assert.equal(two.has("etc/passwd"), false, "whiteout deletes");
    assert.equal(two.get("etc/group")?.contentDigest, sha256("root:x:0:\nstaff:x:50:"));
    assert.equal(two.get("etc/group")?.layerIndex, 1);
    assert.deepEqual(two.childrenOf("var/cache"), ["var/cache/new"], "opaque hides lower children, not the layer's own");
    assert.equal(two.has("var/cache/b/deep"), false);
    assert.equal(two.get("opt")?.type, "file");
    assert.equal(two.has("opt/x"), false, "a file over a directory removes its children");
    assert.equal(two.get("usr/lib/libc.so")?.contentDigest, sha256("libc 2"), "a whiteout hides lower layers only");
    for (const [path] of two.entries()) assert.ok(!path.split("/").pop()?.startsWith(".wh."), `no whiteout in the tree: ${path}`);

    const three = await mergedTree(layers);
    assert.equal(three.get("opt")?.type, "dir");
    assert.equal(three.get("opt")?.mode, 0o755);
    assert.deepEqual(three.childrenOf("opt"), ["opt/y"]);
    assert.equal(three.get("opt/y")?.layerIndex, 2);
    assert.equal(three.get("bin/sh")?.layerIndex, 0);

    const paths = [...three.paths()];
    assert.deepEqual(paths, [...paths].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
  } finally {
    await cleanup();
  }
});

test("resolveDir follows parent symlinks to directories, confined to the root", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    pythonTar(join(dir, "base.tar"), [...BASE, { name: "./tag-resolve", content: "unique" }]);
    const tree = await mergedTree([await layerOfTar(join(dir, "base.tar"))]);
    assert.equal(tree.resolveDir("lib/foo"), "usr/lib/foo", "relative link");
    assert.equal(tree.resolveDir("lib64/a/b"), "usr/lib/a/b", "absolute link");
    assert.equal(tree.resolveDir("usr/lib64/x"), "usr/lib/x", "a '..' above the root stays at the root");
    assert.equal(tree.resolveDir("lib"), "lib", "the last component is the name itself");
    assert.equal(tree.resolveDir("etc/link-to-file/x"), "etc/link-to-file/x", "a link to a file is not followed");
    assert.equal(tree.resolveDir("dangling/x"), "dangling/x", "a dangling link is not followed");
    assert.equal(tree.resolveDir("etc/passwd"), "etc/passwd");
    assert.equal(tree.isLinkToDir("lib"), true);
    assert.equal(tree.isLinkToDir("etc/link-to-file"), false);
    assert.equal(tree.isLinkToDir("usr"), false);
    assert.throws(() => tree.resolveDir("loop1/x"), code("UNSAFE_PATH"));
  } finally {
    await cleanup();
  }
});

test("mergedTree reads each layer once per process and hands out independent copies", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    pythonTars(Object.fromEntries(["a", "b", "c"].map((n) => [join(dir, `${n}.tar`), [{ name: `memo-${n}`, content: String(Math.random()) }]])));
    const counts = new Map<string, number>();
    const [a, b, c] = await Promise.all(["a", "b", "c"].map(async (n) => counting(await layerOfTar(join(dir, `${n}.tar`)), counts)));
    if (!a || !b || !c) throw new Error("fixture");
    const first = await mergedTree([a, b]);
    first.deleteTree("memo-a");
    const again = await mergedTree([a, b]);
    assert.equal(again.has("memo-a"), true, "a caller's changes do not reach the memo");
    const longer = await mergedTree([a, b, c]);
    assert.deepEqual([...longer.paths()], ["memo-a", "memo-b", "memo-c"]);
    assert.deepEqual([counts.get(a.diffId), counts.get(b.diffId), counts.get(c.diffId)], [1, 1, 1]);
  } finally {
    await cleanup();
  }
});

test("mergedTree reads GNU tar layers (long names, ./ prefix)", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const root = join(dir, "root");
    const long = `${"d".repeat(90)}/${"e".repeat(90)}/${"f".repeat(90)}`;
    await mkdir(join(root, long), { recursive: true });
    await writeFile(join(root, long, "file.txt"), "deep");
    await symlink(`../${"x".repeat(150)}`, join(root, "longlink"));
    execFileSync("tar", ["-C", root, "--format=gnu", "-cf", join(dir, "gnu.tar"), "."]);
    const tree = await mergedTree([await layerOfTar(join(dir, "gnu.tar"))]);
    assert.equal(tree.get(`${long}/file.txt`)?.contentDigest, sha256("deep"));
    assert.equal(tree.get("longlink")?.linkname, `../${"x".repeat(150)}`);
  } finally {
    await cleanup();
  }
});

test("mergedTree refuses entries that escape the root and layers that fail their digest", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    pythonTars({
      [join(dir, "evil.tar")]: [{ name: "../../etc/cron.d/x", content: "evil" }],
      [join(dir, "evil2.tar")]: [{ name: "a/.wh..." }],
      [join(dir, "ok.tar")]: [{ name: "fine", content: "fine" }],
    });
    await assert.rejects(mergedTree([await layerOfTar(join(dir, "evil.tar"))]), code("UNSAFE_PATH"));
    await assert.rejects(mergedTree([await layerOfTar(join(dir, "evil2.tar"))]), code("UNSAFE_PATH"));

    const good = await layerOfTar(join(dir, "ok.tar"));
    const mismatched = makeLayer({
      digest: sha256("not these bytes"), diffId: sha256("not these bytes"), size: good.size, compression: "none",
      openRaw: () => good.open(), describe: "the lying layer",
    });
    await assert.rejects(mergedTree([mismatched]), code("DIGEST_MISMATCH"));
    // and the failure is not remembered as a result
    await assert.rejects(mergedTree([mismatched]), code("DIGEST_MISMATCH"));
  } finally {
    await cleanup();
  }
});

test("tree operations do not recurse on depth: a path 20,000 directories deep is whited out, hidden and deleted", () => {
  const depth = 20_000;
  const deep = `${"d/".repeat(depth)}leaf`;
  const fileAt = (layerIndex: number) => ({ type: "file" as const, mode: 0o644, uid: 0, gid: 0, size: 1, mtime: 0, layerIndex });
  const grown = (): FileTree => {
    const tree = new FileTree();
    tree.set("keep", fileAt(0));
    tree.set(deep, fileAt(0));
    tree.set(`d/d/upper`, fileAt(1));
    return tree;
  };
  assert.equal(grown().size, depth + 3);

  const whitedOut = grown();
  whitedOut.deleteLower("d", 1);
  // What layer 1 put under d survives, in the bare directories a runtime makes for it.
  assert.deepEqual([...whitedOut.paths()], ["d", "d/d", "d/d/upper", "keep"]);
  assert.equal(whitedOut.get("d")?.layerIndex, 1);

  const hidden = grown();
  hidden.hideLowerChildren("d/d", 2);
  assert.deepEqual([...hidden.paths()], ["d", "d/d", "keep"]);

  const deleted = grown();
  deleted.deleteTree("d");
  assert.deepEqual([...deleted.paths()], ["keep"]);
});
