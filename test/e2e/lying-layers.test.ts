/**
 * Layers that lie below their digest (test/fixtures/hostile/lying-layers.py: python3
 * tarfile, the gzip and zstd CLIs): 33 bytes of text stored uncompressed as their own
 * diff_id, a tar cut inside an entry, a gzip stream of no tar, bad CRC and length, zstd
 * checksum, streams cut short or followed by junk or zeros, a diff_id of another tar. The
 * stored bytes match the manifest's digest in every case, so a copy that checks digests
 * alone writes them on, and `docker load` fails on the result (as the second test shows
 * with skopeo's copies). Here every copy (to each kind of destination) and every command
 * that reads layers refuses them in one line naming the layer, and writes nothing.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { sharedDockerd } from "../helpers/dockerd.js";
import { runGantry } from "../helpers/gantry.js";
import { REPO_ROOT } from "../helpers/paths.js";
import { assertOneLineRefusal, readingCommands, sentinelDir } from "../helpers/refusal.js";
import { tmpDir } from "../helpers/tmp.js";
import { peerTest, requireTools, run } from "../helpers/tools.js";
import { snapshotTree } from "../unit/export-fixtures.js";
import { fixture } from "../unit/formats-fixtures.js";

const LYING_PY = join(REPO_ROOT, "test", "fixtures", "hostile", "lying-layers.py");

interface LyingCase { name: string; layout: string; why: string }

const dockerd = sharedDockerd();

async function lyingCases(dir: string): Promise<LyingCase[]> {
  await run("python3", [LYING_PY, join(dir, "cases")]);
  return JSON.parse(await readFile(join(dir, "cases", "cases.json"), "utf8")) as LyingCase[];
}

peerTest("a layer whose bytes match their digest but are no sound layer is refused by every copy and every reader", async (t) => {
  requireTools("python3", "gzip", "zstd");
  const dir = await tmpDir(t);
  const cases = await lyingCases(dir);
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

peerTest("what skopeo copies of these layers on, docker load refuses", async (t) => {
  requireTools("python3", "gzip", "zstd", "skopeo");
  const dir = await tmpDir(t);
  const daemon = await dockerd.get();
  const copied: string[] = [];
  for (const c of await lyingCases(dir)) {
    const archive = join(dir, `${c.name}.tar`);
    // skopeo checks digests, and decompresses some layers on the way: what it copies is a peer's copy of the lie.
    const copy = await run("skopeo", ["copy", "--quiet", `oci:${c.layout}:lie`, `docker-archive:${archive}:lie/${c.name}:1`], { allowFailure: true });
    if (copy.code !== 0) continue;
    const loaded = await daemon.docker(["load", "-i", archive], { allowFailure: true });
    assert.notEqual(loaded.code, 0, `docker load took ${c.name} (${c.why}): ${loaded.stdout.toString()}`);
    copied.push(c.name);
  }
  assert.ok(copied.includes("fake-33-bytes"), `skopeo copied ${copied.join(", ")}`);
  t.diagnostic(`skopeo copied ${copied.length} of the lying layers on; docker load refused each: ${copied.join(", ")}`);
});
