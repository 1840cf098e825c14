/**
 * `gantry export` on the hostile corpus of make.py, as a user meets it: exit status 1,
 * one `gantry:` line on stderr naming the layer and the entry, nothing on stdout, and
 * nothing written around the target (a sentinel directory the hostile paths aim at).
 */
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runGantry } from "../helpers/gantry.js";
import { tmpDir } from "../helpers/tmp.js";
import { peerTest, requireTools } from "../helpers/tools.js";
import { makeHostileCorpus, snapshotTree } from "../unit/export-fixtures.js";

peerTest("each hostile layer fails the export with one clear line and leaves the sentinel untouched", async (t) => {
  requireTools("python3");
  const dir = await tmpDir(t);
  const sentinel = join(dir, "sentinel");
  await mkdir(sentinel);
  await writeFile(join(sentinel, "keep"), "the sentinel's own file\n");
  const cases = await makeHostileCorpus(join(dir, "corpus"), sentinel);
  assert.equal(cases.length, 10);
  const before = await snapshotTree(sentinel);

  for (const c of cases) {
    for (const out of [join(sentinel, "out"), join(sentinel, "out.tar")]) {
      const r = await runGantry(["export", c.file, "-o", out]);
      assert.equal(r.code, 1, `${c.name}: exit status (${r.stderr})`);
      assert.equal(r.stdout.length, 0, `${c.name}: nothing on stdout`);
      const lines = r.stderr.split("\n").filter((l) => l.startsWith("gantry: "));
      assert.equal(lines.length, 1, `${c.name}: one gantry: line in ${JSON.stringify(r.stderr)}`);
      const line = lines[0] ?? "";
      assert.ok(line.includes(JSON.stringify(c.entry).slice(1, -1)), `${c.name}: the line names ${c.entry}: ${line}`);
      assert.match(line, /layer \d of \d/, `${c.name}: the line names the layer: ${line}`);
      assert.deepEqual(await snapshotTree(sentinel), before, `${c.name}: nothing changed around the target`);
    }
  }
});
