/**
 * The hostile corpus of make.py (traversal, absolute names, writes and hardlinks through
 * symlinks laid in the same or a lower layer, hardlinks outside, whiteouts of ".."):
 * every export fails with an UnsafePathError naming the layer and the entry, and nothing
 * changes in the sentinel directory around the target, which the hostile paths aim at.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { exportImage } from "../../src/ops/export.js";
import { GantryError } from "../../src/model/errors.js";
import { tmpDir } from "../helpers/tmp.js";
import { have } from "../helpers/tools.js";
import { makeHostileCorpus, snapshotTree } from "./export-fixtures.js";

const EXPECTED_CASES = [
  "absolute", "hardlink-outside", "hardlink-through-symlink", "symlink-dir-then-file", "symlink-lower-layer",
  "symlink-same-layer", "traversal", "traversal-deep", "whiteout-dotdot", "whiteout-dotdot-nested",
];

for (const format of ["dir", "tar"] as const) {
  test(`every hostile layer is refused (${format} output) and nothing around the target changes`, { skip: !have("python3") }, async (t) => {
    const dir = await tmpDir(t);
    const sentinel = join(dir, "sentinel");
    await mkdir(sentinel);
    await writeFile(join(sentinel, "keep"), "the sentinel's own file\n");
    const cases = await makeHostileCorpus(join(dir, "corpus"), sentinel);
    assert.deepEqual(cases.map((c) => c.name).sort(), EXPECTED_CASES);
    const before = await snapshotTree(sentinel);

    for (const c of cases) {
      const output = join(sentinel, format === "dir" ? "out" : "out.tar");
      await assert.rejects(exportImage({ ref: c.file, output }), (err: unknown) => {
        assert.ok(err instanceof GantryError, `${c.name}: a GantryError`);
        assert.equal(err.code, "UNSAFE_PATH", `${c.name}: ${err.message}`);
        assert.ok(err.message.includes(JSON.stringify(c.entry).slice(1, -1)), `${c.name}: the message names ${c.entry}: ${err.message}`);
        assert.match(err.message, /layer \d of \d \(sha256:[0-9a-f]{64}\)/, `${c.name}: the message names the layer`);
        assert.doesNotMatch(err.message, /\n/);
        return true;
      });
      assert.deepEqual(await snapshotTree(sentinel), before, `${c.name}: the sentinel directory is unchanged`);
    }
    assert.equal(await readFile(join(sentinel, "keep"), "utf8"), "the sentinel's own file\n");
    assert.deepEqual(await readdir(sentinel), ["keep"]);
  });
}
