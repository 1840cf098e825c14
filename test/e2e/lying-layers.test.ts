/**
 * Layers that lie below their digest (test/fixtures/hostile/lying-layers.py: python3
 * tarfile, the gzip and zstd CLIs): 33 bytes of text stored uncompressed as their own
 * diff_id, a tar cut inside an entry, a gzip stream of no tar, bad CRC and length, zstd
 * checksum, streams cut short or followed by junk or zeros, a diff_id of another tar. The
 * stored bytes match the manifest's digest in every case, so a copy that checks digests
 * alone writes them on, and `docker load` fails on the result. Here every copy (to each
 * kind of destination) and every command that reads layers refuses them in one line naming
 * the layer, and writes nothing.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { runGantry } from "../helpers/gantry.js";
import { REPO_ROOT } from "../helpers/paths.js";
import { assertOneLineRefusal, readingCommands, sentinelDir } from "../helpers/refusal.js";
import { tmpDir } from "../helpers/tmp.js";
import { peerTest, requireTools, run } from "../helpers/tools.js";
import { snapshotTree } from "../unit/export-fixtures.js";
import { fixture } from "../unit/formats-fixtures.js";

const LYING_PY = join(REPO_ROOT, "test", "fixtures", "hostile", "lying-layers.py");

interface LyingCase { name: string; layout: string; why: string }

peerTest("a layer whose bytes match their digest but are no sound layer is refused by every copy and every reader", async (t) => {
  requireTools("python3", "gzip", "zstd");
  const dir = await tmpDir(t);
  await run("python3", [LYING_PY, join(dir, "cases")]);
  const cases = JSON.parse(await readFile(join(dir, "cases", "cases.json"), "utf8")) as LyingCase[];
  assert.equal(cases.length, 12);
  const out = await sentinelDir(join(dir, "out"));
  const before = await snapshotTree(out);
  let runs = 0;
  for (const c of cases) {
    const src = `oci:${c.layout}:lie`;
    const commands = [
      ...(await readingCommands(src, `docker-archive:${fixture("skopeo-app.tar")}`, out)).filter((cmd) => cmd.name !== "inspect"),
      { name: "copy to docker-archive", args: ["copy", src, `docker-archive:${join(out, "copied.tar")}`] },
      { name: "copy to oci-archive", args: ["copy", src, `oci-archive:${join(out, "copied-oci.tar")}`] },
      { name: "copy to dir", args: ["copy", src, `dir:${join(out, "copied-dir")}`] },
    ];
    for (const command of commands) {
      const r = await runGantry(command.args);
      assertOneLineRefusal(r, "layer 1 of 1", `${c.name} (${c.why}), ${command.name}`);
      assert.deepEqual(await snapshotTree(out), before, `${c.name}, ${command.name}: nothing written`);
      runs++;
    }
  }
  t.diagnostic(`${cases.length} lying layers, ${runs} commands refused`);
});
