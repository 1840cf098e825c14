/**
 * The two pieces of bookkeeping behind a safe, faithful export: which symlinks are laid
 * at each point of the layer stream (SymlinkGuard), and which paths share an inode once
 * flattened (planHardlinks).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { SymlinkGuard } from "../../src/flatten/symlink-guard.js";
import { planHardlinks } from "../../src/flatten/hardlinks.js";
import { FileTree, type TreeNode } from "../../src/layer/tree.js";
import type { Digest } from "../../src/model/digest.js";

test("SymlinkGuard: a link laid in a lower or the same layer is seen above it until something removes it", () => {
  const g = new SymlinkGuard();
  g.laid("a", false, true, 0);
  assert.equal(g.linkAbove("a/b"), "a");
  assert.equal(g.linkAbove("a/b/c"), "a");
  assert.equal(g.linkAbove("a"), undefined, "the link itself is not above its own path");
  assert.equal(g.linkAbove("ab/c"), undefined);

  g.laid("a", true, false, 1);
  assert.equal(g.linkAbove("a/b"), undefined, "a directory entry replaces the link");

  g.laid("d/l", false, true, 1);
  g.laid("d", false, false, 2);
  assert.equal(g.linkAbove("d/l/x"), undefined, "a file over the parent directory removes the links below it");
});

test("SymlinkGuard: whiteouts and opaque markers remove only what lower layers laid", () => {
  const g = new SymlinkGuard();
  g.laid("x/low", false, true, 0);
  g.laid("x/same", false, true, 1);
  g.opaque("x", 1);
  assert.equal(g.linkAbove("x/low/f"), undefined, "the lower link is hidden");
  assert.equal(g.linkAbove("x/same/f"), "x/same", "the same layer's link survives its opaque marker");

  g.whiteout("x/same", 1);
  assert.equal(g.linkAbove("x/same/f"), "x/same", "a whiteout does not remove its own layer's entry");
  g.whiteout("x", 2);
  assert.equal(g.linkAbove("x/same/f"), undefined, "a higher whiteout of the parent removes it");

  g.laid("top", false, true, 3);
  g.opaque("", 4);
  assert.equal(g.linkAbove("top/f"), undefined, "an opaque marker at the root hides every lower link");
});

const D = (c: string): Digest => `sha256:${c.repeat(64)}`;
function file(layerIndex: number, digest: Digest, mode = 0o644): TreeNode {
  return { type: "file", mode, uid: 0, gid: 0, size: 3, mtime: 0, contentDigest: digest, layerIndex };
}
function hardlink(layerIndex: number, target: string, digest: Digest | undefined, mode = 0o644): TreeNode {
  const n: TreeNode = { type: "hardlink", mode, uid: 0, gid: 0, size: 3, mtime: 0, linkname: target, layerIndex };
  if (digest !== undefined) n.contentDigest = digest;
  return n;
}

test("planHardlinks: links to a surviving file share its inode; links to replaced bytes form an orphan group", () => {
  const tree = new FileTree();
  tree.set("bin/tool", file(0, D("a"), 0o755));
  tree.set("bin/z-link", hardlink(1, "bin/tool", D("a"), 0o755));
  tree.set("bin/a-link", hardlink(1, "bin/z-link", D("a"), 0o755));
  tree.set("etc/orig", file(2, D("c"), 0o600));
  tree.set("etc/old-2", hardlink(1, "etc/orig", D("b")));
  tree.set("etc/old-1", hardlink(1, "etc/orig", D("b")));
  tree.set("etc/moded", hardlink(1, "bin/tool", D("a"), 0o700));
  tree.set("etc/dangling", hardlink(1, "nowhere", undefined));

  const plan = planHardlinks(tree);
  const byHolder = new Map(plan.groups.map((g) => [g.holder, g]));
  assert.deepEqual(byHolder.get("bin/tool")?.members, ["bin/a-link", "bin/tool", "bin/z-link"], "a chain of links resolves to the file");
  assert.equal(byHolder.get("bin/tool")?.orphan, undefined);

  const orphan = byHolder.get("etc/old-1");
  assert.ok(orphan, "the orphan group is held by its first member in byte order");
  assert.deepEqual(orphan.members, ["etc/old-1", "etc/old-2"]);
  assert.deepEqual(orphan.orphan, { target: "etc/orig", digest: D("b") });
  assert.equal(orphan.node.mode, 0o644, "the group keeps the mode the links were made with");

  assert.ok(byHolder.get("etc/moded")?.orphan, "a link whose mode differs from the surviving file's is not that file's inode");
  assert.deepEqual(byHolder.get("etc/dangling")?.orphan, { target: "nowhere", digest: undefined });
  assert.deepEqual(plan.orphansByTarget.get("etc/orig")?.map((g) => g.holder), ["etc/old-1"]);
});
