/**
 * What the layer index saves: `gantry build` run twice on unchanged inputs, each run a fresh
 * process (as a user runs it), with GANTRY_CACHE pointing at a temporary directory.
 *
 *   npx tsc -p . && node dist/bench/rebuild.js [SOURCE_DIR] [MEGABYTES]
 *
 * Copies about MEGABYTES (default 100) of SOURCE_DIR (default /usr/lib) into a temporary
 * tree, then times:
 *   scratch   copyToRoot of that tree, no base: cold (empty cache) vs warm
 *   on-base   the scratch image as fromImage plus a one-file layer: cold (the base's
 *             layer is read to compare with) vs warm (only its diff_id is needed)
 * A warm run is timed three times and the fastest kept. Every warm archive is checked to
 * be byte-identical to its cold one. The inputs are left two seconds before the first
 * build, so their ctimes are outside the index's racy window.
 */
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { copySome, gantry, mb, timeShell } from "./lib.js";

const source = process.argv[2] ?? "/usr/lib";
const budget = Number(process.argv[3] ?? 100) * 1024 * 1024;

/** One `gantry build` in a fresh process, as a user runs it; its wall time in seconds. */
function timeBuild(spec: string, out: string, cache: string): number {
  return timeShell(`${gantry} --quiet build ${spec} -o ${out}`, { ...process.env, GANTRY_CACHE: cache });
}

interface RebuildRow { name: string; cold: number; warm: number; bytes: number }

async function coldAndWarm(name: string, spec: string, work: string, cache: string): Promise<RebuildRow> {
  const coldOut = join(work, `${name}-cold.tar`);
  const cold = timeBuild(spec, coldOut, cache);
  const warmOut = join(work, `${name}-warm.tar`);
  const warm = Math.min(...[1, 2, 3].map(() => timeBuild(spec, warmOut, cache)));
  if (!(await readFile(coldOut)).equals(await readFile(warmOut))) throw new Error(`${name}: the warm archive differs from the cold one`);
  return { name, cold, warm, bytes: (await stat(warmOut)).size };
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "gantry-bench-rebuild-"));
  try {
    const copied = await copySome(source, join(work, "tree"), budget);
    await mkdir(join(work, "extra"));
    await writeFile(join(work, "extra/version.txt"), "1\n");
    timeShell(`tar -C ${work} -cf - tree > /dev/null`); // warm the page cache
    await sleep(2_000);
    console.log(`tree: ${copied.files} files, ${mb(copied.bytes)} copied from ${source}`);

    const common = { tag: "1", created: "2024-01-01T00:00:00Z" };
    const scratchSpec = join(work, "scratch.json");
    await writeFile(scratchSpec, JSON.stringify({ name: "bench-scratch", copyToRoot: "./tree", ...common }));
    const onBaseSpec = join(work, "on-base.json");
    await writeFile(onBaseSpec, JSON.stringify({ name: "bench-on-base", fromImage: "./scratch-cold.tar", copyToRoot: "./extra", ...common }));

    const cache = join(work, "cache");
    const rows = [await coldAndWarm("scratch", scratchSpec, work, cache)];
    // Cold, the one-file layer is compared with the base's merged tree (its 100 MB layer is
    // read); warm, the base's diff_id alone finds it.
    rows.push(await coldAndWarm("on-base", onBaseSpec, work, cache));

    console.log("\n| build | archive | cold (s) | warm (s) | cold / warm |\n| --- | --- | --- | --- | --- |");
    for (const r of rows) console.log(`| ${r.name} | ${mb(r.bytes)} | ${r.cold.toFixed(2)} | ${r.warm.toFixed(2)} | ${(r.cold / r.warm).toFixed(1)}× |`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
