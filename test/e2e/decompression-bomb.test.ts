/**
 * zstd decompression bombs (test/fixtures/hostile/bomb.py: python3 tarfile, the zstd CLI at
 * -19): a layer of 76 KB that expands to 2.3 GiB of zeros, every digest true. Each command
 * that reads layers refuses it, in one line naming the layer, with its peak RSS (measured by
 * /usr/bin/time) far below what the layer expands to, and writes nothing. A bomb under the
 * bound (256 MiB from 8 KB) is read, in as little memory: the decompressors wait for their
 * readers.
 */
import assert from "node:assert/strict";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { runGantry, type GantryResult } from "../helpers/gantry.js";
import { REPO_ROOT } from "../helpers/paths.js";
import { assertOneLineRefusal, readingCommands, sentinelDir } from "../helpers/refusal.js";
import { tmpDir } from "../helpers/tmp.js";
import { peerTest, requireTools, run } from "../helpers/tools.js";
import { snapshotTree } from "../unit/export-fixtures.js";
import { fixture } from "../unit/formats-fixtures.js";

const BOMB_PY = join(REPO_ROOT, "test", "fixtures", "hostile", "bomb.py");
/** Far below the 2.3 GiB a bomb expands to, and above what a command needs for itself. */
const MAX_RSS_KB = 400 * 1024;

/** The docker-archive of bomb.py with a layer of `bytes` zeros; returns its path and the layer's stored size. */
async function bomb(dir: string, bytes: number): Promise<{ path: string; stored: number }> {
  const path = join(dir, `bomb-${bytes}.tar`);
  const stored = Number((await run("python3", [BOMB_PY, path, String(bytes)], { timeoutMs: 300_000 })).stdout.toString("utf8"));
  return { path, stored };
}

/** gantry under /usr/bin/time: its result and its peak RSS in KB. */
async function measured(args: string[]): Promise<{ r: GantryResult; rssKb: number }> {
  const r = await runGantry(args, { prefix: ["/usr/bin/time", "-f", "peak-rss-kb %M"], timeoutMs: 300_000 });
  const m = /peak-rss-kb (\d+)/.exec(r.stderr);
  assert.ok(m, `no RSS measured in ${r.stderr}`);
  return { r, rssKb: Number(m[1]) };
}

peerTest("a 2.3 GiB zstd bomb is refused by every command that reads its layer, in bounded memory", async (t) => {
  requireTools("python3", "zstd", "/usr/bin/time");
  const dir = await tmpDir(t);
  const { path, stored } = await bomb(dir, 2_469_606_195);
  assert.ok(stored < 100_000, `the bomb is ${stored} bytes stored`);
  const out = await sentinelDir(join(dir, "out"));
  const before = await snapshotTree(out);
  const reading = (await readingCommands(`docker-archive:${path}`, `docker-archive:${fixture("skopeo-app.tar")}`, out))
    .filter((c) => c.name !== "inspect"); // inspect reads no layer
  for (const command of reading) {
    const { r, rssKb } = await measured(command.args);
    const line = assertOneLineRefusal(r, "layer 1 of 1", `${command.name} of the bomb`);
    assert.match(line, new RegExp(`expands past \\d+ bytes from ${stored} stored .*decompression bomb`), `${command.name}: ${line}`);
    assert.ok(rssKb < MAX_RSS_KB, `${command.name}: peak RSS ${rssKb} KB`);
    t.diagnostic(`${command.name}: refused, peak RSS ${Math.round(rssKb / 1024)} MiB`);
    assert.deepEqual(await snapshotTree(out), before, `${command.name}: nothing written`);
  }
});

peerTest("a zstd bomb under the bound is read whole, in bounded memory", async (t) => {
  requireTools("python3", "zstd", "/usr/bin/time");
  const dir = await tmpDir(t);
  const { path } = await bomb(dir, 256 * 1024 * 1024);
  const dest = join(dir, "rootfs.tar");
  const { r, rssKb } = await measured(["export", path, "-o", dest]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok((await stat(dest)).size > 256 * 1024 * 1024);
  assert.ok(rssKb < MAX_RSS_KB, `export: peak RSS ${rssKb} KB`);
  t.diagnostic(`export of 256 MiB from a bomb: peak RSS ${Math.round(rssKb / 1024)} MiB`);
  assert.deepEqual((await readdir(dir)).sort(), [`bomb-${256 * 1024 * 1024}.tar`, "rootfs.tar"]);
});
