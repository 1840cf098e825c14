/**
 * `gantry export` judged against umoci: the same image, flattened by `skopeo copy` +
 * `umoci unpack` and by gantry (to a directory, and to a tar that GNU tar extracts),
 * must give the same tree, path by path: type, mode, owner, size, link count, content
 * hash and link target. Images: the three-layer one of make.py (deletion, opaque
 * directory with its marker after the new entries, type changes, hardlinks, a device,
 * a FIFO) and umoci's own whiteout base (test/fixtures/bases/whiteout.sh).
 */
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { fixtureBases } from "../helpers/bases.js";
import { runGantry } from "../helpers/gantry.js";
import { tmpDir } from "../helpers/tmp.js";
import { peerTest, requireRoot, requireTools, run, unpackWithPeers } from "../helpers/tools.js";
import { makeLayeredArchive, snapshotTree, type PathFacts } from "../unit/export-fixtures.js";

const bases = fixtureBases();

function assertSameTrees(ours: Map<string, PathFacts>, theirs: Map<string, PathFacts>, what: string): void {
  const missing = [...theirs.keys()].filter((p) => !ours.has(p));
  const extra = [...ours.keys()].filter((p) => !theirs.has(p));
  assert.deepEqual({ missing, extra }, { missing: [], extra: [] }, `${what}: the same paths`);
  for (const [path, facts] of theirs) assert.deepEqual(ours.get(path), facts, `${what}: ${path}`);
}

async function exportBothWays(t: TestContext, ref: string): Promise<{ umoci: Map<string, PathFacts>; dir: Map<string, PathFacts>; tar: Map<string, PathFacts> }> {
  requireRoot();
  requireTools("tar");
  const work = await tmpDir(t);
  const { rootfs } = await unpackWithPeers(ref, work);
  const dirOut = join(work, "export-dir");
  const tarOut = join(work, "export.tar");
  for (const out of [dirOut, tarOut]) {
    const r = await runGantry(["export", ref, "-o", out]);
    assert.equal(r.code, 0, `gantry export -o ${out}: ${r.stderr}`);
  }
  const untarred = join(work, "untarred");
  await mkdir(untarred);
  await run("tar", ["--numeric-owner", "--same-owner", "-xpf", tarOut, "-C", untarred]);
  return { umoci: await snapshotTree(rootfs), dir: await snapshotTree(dirOut), tar: await snapshotTree(untarred) };
}

peerTest("the hand-made three-layer image flattens as umoci unpacks it", async (t) => {
  const image = await makeLayeredArchive(join(await tmpDir(t), "layered.tar"));
  const { umoci, dir, tar } = await exportBothWays(t, `docker-archive:${image}`);
  // The fixture's traps are there, so a match means they were handled.
  assert.equal(umoci.get("etc/doomed.txt")?.type, "l");
  assert.equal(umoci.has("opt/data/old1"), false);
  assert.equal(umoci.get("etc/orig-link")?.sha256 !== umoci.get("etc/orig")?.sha256, true);
  assertSameTrees(dir, umoci, "directory export");
  assertSameTrees(tar, umoci, "tar export");
});

peerTest("umoci's own whiteouts (whiteout.sh) flatten as umoci unpacks them, read from an OCI layout too", async (t) => {
  const base = await bases.whiteout();
  const { umoci, dir, tar } = await exportBothWays(t, `docker-archive:${base.ref}`);
  for (const gone of base.deleted) assert.equal(umoci.has(gone.slice(1)), false, `${gone} is deleted`);
  assertSameTrees(dir, umoci, "directory export");
  assertSameTrees(tar, umoci, "tar export");

  const layout = join(await tmpDir(t), "layout");
  await run("skopeo", ["copy", "--quiet", `docker-archive:${base.ref}`, `oci:${layout}:w`]);
  const out = join(layout, "..", "from-oci");
  const r = await runGantry(["export", `oci:${layout}:w`, "-o", out]);
  assert.equal(r.code, 0, r.stderr);
  assertSameTrees(await snapshotTree(out), umoci, "export of the OCI layout");
});
