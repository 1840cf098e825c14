/**
 * SPEC "Reproducibility": the same spec and the same input files give the same bytes,
 * whatever the path of the sources, their times, inode numbers and creation order,
 * the umask, TZ, locale, the number of cores, and the cache. Each build below varies
 * all of those at once; the archives must be byte-identical.
 */
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { copyFile, mkdir, readdir, utimes, lutimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { sha256File } from "../helpers/archive.js";
import { fixtureBases } from "../helpers/bases.js";
import { payloadFiles, standardSpec, writePayload, type Spec } from "../helpers/build-case.js";
import { runGantry, type GantryOptions } from "../helpers/gantry.js";
import { tmpDir } from "../helpers/tmp.js";
import { have, peerTest } from "../helpers/tools.js";

const bases = fixtureBases();

interface Variant {
  /** Where the inputs live (a path with a space in the second variant). */
  subdir: string;
  order: "forward" | "reverse";
  /** Times given to every input file and directory. */
  time: Date;
  env: NodeJS.ProcessEnv;
  prefix: string[];
  cache: string;
  outName: string;
}

/** Sets atime and mtime of everything below `dir` (symlinks themselves included). */
async function touchTree(dir: string, time: Date): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await touchTree(path, time);
    if (entry.isSymbolicLink()) await lutimes(path, time, time);
    else await utimes(path, time, time);
  }
  await utimes(dir, time, time);
}

async function buildVariant(t: TestContext, spec: Spec, baseTar: string, v: Variant): Promise<string> {
  const dir = join(await tmpDir(t, "gantry-repro-"), v.subdir);
  await mkdir(dir, { recursive: true });
  // The base is copied too: its path must not matter either.
  await copyFile(baseTar, join(dir, "base.tar"));
  await writePayload(join(dir, "root"), payloadFiles(), v.order);
  await touchTree(join(dir, "root"), v.time);
  const specPath = join(dir, "spec.json");
  await writeFile(specPath, JSON.stringify({ ...spec, fromImage: "./base.tar" }));
  const out = join(dir, v.outName);
  const opts: GantryOptions = { cwd: dir, env: { ...v.env, GANTRY_CACHE: v.cache }, prefix: v.prefix };
  const result = await runGantry(["build", specPath, "-o", out], opts);
  assert.equal(result.code, 0, `gantry build failed: ${result.stderr}`);
  return out;
}

async function variants(t: TestContext): Promise<[Variant, Variant]> {
  const caches = await tmpDir(t, "gantry-repro-caches-");
  const umask = (mask: string) => ["sh", "-c", `umask ${mask} && exec "$@"`, "sh"];
  // One core for the second build when taskset can pin it (the first has them all).
  const oneCore = have("taskset") ? ["taskset", "-c", "0"] : [];
  return [
    {
      subdir: "a", order: "forward", time: new Date("2001-02-03T04:05:06Z"),
      env: { TZ: "UTC", LC_ALL: "C", LANG: "C" }, prefix: umask("022"),
      cache: join(caches, "one"), outName: "out.tar",
    },
    {
      subdir: "some/other place/b", order: "reverse", time: new Date("2019-12-31T23:59:59Z"),
      env: { TZ: "Pacific/Chatham", LC_ALL: "de_DE.UTF-8", LANG: "de_DE.UTF-8" }, prefix: [...oneCore, ...umask("077")],
      cache: join(caches, "two"), outName: "other-name.tar",
    },
  ];
}

for (const compressor of ["gzip", "zstd"] as const) {
  peerTest(`two ${compressor} builds from different paths, times, order, umask, TZ, locale and cores are byte-identical`, async (t) => {
    const base = await bases.busyboxArchive();
    const spec = standardSpec(undefined, { compressor });
    const [a, b] = await variants(t);
    const first = await buildVariant(t, spec, base.ref, a);
    const second = await buildVariant(t, spec, base.ref, b);
    assert.equal(await sha256File(second), await sha256File(first));
  });
}

peerTest("a build with a warm cache writes the same bytes as one with a cold cache", async (t) => {
  const base = await bases.busyboxArchive();
  const spec = standardSpec(undefined);
  const [a] = await variants(t);
  const cold = await buildVariant(t, spec, base.ref, a);
  const warm = await buildVariant(t, spec, base.ref, { ...a, order: "reverse" });
  assert.equal(await sha256File(warm), await sha256File(cold));
});

peerTest("a different spec mtime gives a different archive (the comparisons above can fail)", async (t) => {
  const base = await bases.busyboxArchive();
  const [a] = await variants(t);
  const one = await buildVariant(t, standardSpec(undefined), base.ref, a);
  const other = await buildVariant(t, standardSpec(undefined, { mtime: "2023-06-07T08:09:11Z" }), base.ref, a);
  assert.notEqual(await sha256File(other), await sha256File(one));
});
