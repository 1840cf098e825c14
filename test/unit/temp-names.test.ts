/**
 * Temporary names (util/temp-names.ts): what a killed gantry left is removed by the next
 * one; a live process's temporaries, another machine's, and anything not named by gantry
 * are left alone.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { makeTempDir, ownerTag, sweepStale } from "../../src/util/temp-names.js";
import { tmpDir } from "../helpers/tmp.js";

/** The pid of a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(r.stdout);
}

test("only the temporaries of dead processes of this machine are swept", async (t) => {
  const dir = await tmpDir(t);
  const host = ownerTag().split("-")[0]!;
  const live = spawn("sleep", ["30"]);
  t.after(() => live.kill());
  const dead = deadPid();
  const names = {
    dead: `.out.tar.gantry-${host}-${dead}-abcd.tmp`,
    deadDir: `.out.tar.gantry-${host}-${dead}-XyZ123`,
    live: `.out.tar.gantry-${host}-${live.pid}-abcd.tmp`,
    mine: `.out.tar.gantry-${ownerTag()}abcd.tmp`,
    otherHost: `.out.tar.gantry-${host === "000000" ? "111111" : "000000"}-${dead}-abcd.tmp`,
    otherPrefix: `.other.tar.gantry-${host}-${dead}-abcd.tmp`,
    user: "out.tar",
  };
  for (const [what, name] of Object.entries(names)) {
    if (what === "deadDir") await mkdir(join(dir, name));
    else await writeFile(join(dir, name), "x");
  }
  await sweepStale(dir, ".out.tar.gantry-");
  const left = new Set(await readdir(dir));
  assert.ok(!left.has(names.dead) && !left.has(names.deadDir), "a dead process's file and directory are gone");
  for (const what of ["live", "mine", "otherHost", "otherPrefix", "user"] as const) assert.ok(left.has(names[what]), `${what} is kept`);
});

test("a new temporary directory carries the owner tag and sweeps before it is made", async (t) => {
  const dir = await tmpDir(t);
  const host = ownerTag().split("-")[0]!;
  const stale = `gantry-stage-${host}-${deadPid()}-old123`;
  await mkdir(join(dir, stale));
  const made = await makeTempDir(dir, "gantry-stage-");
  assert.ok(made.startsWith(join(dir, `gantry-stage-${ownerTag()}`)));
  assert.deepEqual(await readdir(dir), [made.slice(dir.length + 1)]);
});
