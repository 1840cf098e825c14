import { test } from "node:test";
import assert from "node:assert/strict";
import { FileTree, type TreeNode } from "../../src/layer/tree.js";
import { compareTrees } from "../../src/ops/diff.js";
import { sha256 } from "../../src/model/digest.js";

function file(content: string, extra: Partial<TreeNode> = {}): TreeNode {
  return { type: "file", mode: 0o644, uid: 0, gid: 0, size: content.length, mtime: 1, contentDigest: sha256(content), layerIndex: 0, ...extra };
}
const dir = (extra: Partial<TreeNode> = {}): TreeNode => ({ type: "dir", mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 1, layerIndex: 0, ...extra });

test("added, removed and changed paths, with what changed", () => {
  const a = new FileTree();
  a.set("etc", dir());
  a.set("etc/passwd", file("root"));
  a.set("etc/gone", file("x"));
  a.set("bin", dir());
  a.set("bin/sh", file("sh"));
  a.set("lib", dir());
  const b = new FileTree();
  b.set("etc", dir());
  b.set("etc/passwd", file("root2", { mode: 0o600 }));
  b.set("etc/new", file("n"));
  b.set("bin", dir({ uid: 5 }));
  b.set("bin/sh", file("sh"));
  b.set("lib", { type: "symlink", mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 1, linkname: "usr/lib", layerIndex: 1 });
  const r = compareTrees(a, b);
  assert.deepEqual(r.added, ["etc/new"]);
  assert.deepEqual(r.removed, ["etc/gone"]);
  assert.deepEqual(r.changed, [
    { path: "bin", attributes: ["owner"] },
    { path: "etc/passwd", attributes: ["content", "mode"] },
    { path: "lib", attributes: ["type"] },
  ]);
});

test("identical trees differ in nothing, whichever layer supplied a path", () => {
  const a = new FileTree();
  a.set("x", file("same"));
  const b = new FileTree();
  b.set("x", file("same", { layerIndex: 3 }));
  assert.deepEqual(compareTrees(a, b), { added: [], removed: [], changed: [] });
});
