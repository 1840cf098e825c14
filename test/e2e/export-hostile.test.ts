/**
 * `gantry export` on the hostile corpus of make.py, as a user meets it: exit status 1,
 * one `gantry:` line on stderr naming the layer and the entry, nothing on stdout, and
 * nothing written around the target (a sentinel directory the hostile paths aim at).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runGantry } from "../helpers/gantry.js";
import { assertOneLineRefusal, sentinelDir } from "../helpers/refusal.js";
import { tmpDir } from "../helpers/tmp.js";
import { peerTest, requireTools } from "../helpers/tools.js";
import { makeHostileCorpus, snapshotTree } from "../unit/export-fixtures.js";

peerTest("each hostile layer fails the export with one clear line and leaves the sentinel untouched", async (t) => {
  requireTools("python3");
  const dir = await tmpDir(t);
  const sentinel = await sentinelDir(join(dir, "sentinel"));
  const cases = await makeHostileCorpus(join(dir, "corpus"), sentinel);
  assert.equal(cases.length, 10);
  const before = await snapshotTree(sentinel);

  for (const c of cases) {
    for (const out of [join(sentinel, "out"), join(sentinel, "out.tar")]) {
      const r = await runGantry(["export", c.file, "-o", out]);
      const line = assertOneLineRefusal(r, JSON.stringify(c.entry).slice(1, -1), c.name);
      assert.match(line, /layer \d of \d/, `${c.name}: the line names the layer: ${line}`);
      assert.deepEqual(await snapshotTree(sentinel), before, `${c.name}: nothing changed around the target`);
    }
  }
});
