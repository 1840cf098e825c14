/**
 * How gantry scales, beside buildah, in one run: one 2 GiB file (bytes: time and peak RSS),
 * and 100,000 small files (count: time per file).
 *
 *   npm run build && node dist/bench/scale.js [FILES] [GIB]
 *
 * Each tree is built into one gzip layer by `gantry build --no-cache` and by `buildah copy`
 * (untimed) + `buildah commit` (timed), vfs storage; the small files also by `gantry build`
 * with an empty cache (a user's first build). Peak RSS is GNU time's maximum
 * resident set of the gantry process (its worker threads included).
 */
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gantry, has, timeShell } from "./lib.js";

const files = Number(process.argv[2] ?? 100_000);
const gib = Number(process.argv[3] ?? 2);

/** `gantry build` of `tree` with --no-cache, or with `cache` (a fresh directory: a user's first build). */
async function gantryBuild(work: string, tree: string, name: string, cache?: string): Promise<{ seconds: number; rssMb: number }> {
  const spec = join(work, `${name}.json`);
  await writeFile(spec, JSON.stringify({ name: "scale", tag: name, copyToRoot: [tree] }));
  const rss = join(work, `${name}.rss`);
  const env = cache === undefined ? undefined : { ...process.env, GANTRY_CACHE: cache };
  const seconds = timeShell(`/usr/bin/time -f %M -o ${rss} ${gantry} build ${spec} -o ${join(work, `${name}.tar`)} ${cache === undefined ? "--no-cache" : ""} --quiet`, env);
  return { seconds, rssMb: Number((await readFile(rss, "utf8")).trim()) / 1024 };
}

function buildah(work: string, tree: string, name: string): number | undefined {
  if (!has("buildah")) return undefined;
  const b = `buildah --root ${join(work, "buildah")} --runroot ${join(work, "buildah-run")} --storage-driver vfs`;
  timeShell(`c=$(${b} from scratch) && ${b} copy $c ${tree} / >/dev/null && echo $c > ${work}/${name}.container`);
  const seconds = timeShell(`${b} commit --quiet --disable-compression=false $(cat ${work}/${name}.container) oci-archive:${join(work, `${name}-buildah.tar`)} >/dev/null`);
  spawnSync("bash", ["-c", `${b} rm --all >/dev/null 2>&1; ${b} rmi --all --force >/dev/null 2>&1; true`]);
  return seconds;
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "gantry-bench-scale-"));
  try {
    const big = join(work, "big");
    await mkdir(big);
    timeShell(`head -c ${gib}G /dev/urandom > ${big}/blob.bin`);
    const g1 = await gantryBuild(work, big, "big");
    const b1 = buildah(work, big, "big");
    console.log(`one ${gib} GiB file: gantry ${g1.seconds.toFixed(2)} s (peak RSS ${g1.rssMb.toFixed(0)} MB)` +
      (b1 === undefined ? "" : `, buildah commit ${b1.toFixed(2)} s (${(g1.seconds / b1).toFixed(2)}x)`));
    await rm(big, { recursive: true, force: true });

    const small = join(work, "small");
    timeShell(`mkdir -p ${small} && cd ${small} && for d in $(seq 0 99); do mkdir d$d; for f in $(seq 0 ${Math.ceil(files / 100) - 1}); do printf 'file %s of dir %s\\n' $f $d > d$d/f$f.txt; done; done`);
    const g2 = await gantryBuild(work, small, "small");
    // The same with an empty cache, as a user's first build runs: every file is also hashed
    // for the layer's key and recorded in the stat index. Before buildah's turn, whose `rm`
    // of its copy of the 100,000 files slowed whatever ran next by a third, sync or not.
    const g3 = await gantryBuild(work, small, "small-cached", join(work, "cache"));
    const b2 = buildah(work, small, "small");
    const per = (s: number): string => `${((s / files) * 1e6).toFixed(0)} µs/file`;
    console.log(`${files} small files: gantry ${g2.seconds.toFixed(2)} s, ${per(g2.seconds)} (peak RSS ${g2.rssMb.toFixed(0)} MB)` +
      (b2 === undefined ? "" : `, buildah commit ${b2.toFixed(2)} s, ${per(b2)} (${(g2.seconds / b2).toFixed(2)}x)`));
    console.log(`${files} small files, first build with an empty cache: gantry ${g3.seconds.toFixed(2)} s, ${per(g3.seconds)} (peak RSS ${g3.rssMb.toFixed(0)} MB)` +
      (b2 === undefined ? "" : ` (${(g3.seconds / b2).toFixed(2)}x buildah commit)`));
  } finally {
    timeShell(`umount -R ${work}/buildah/* 2>/dev/null; true`);
    await rm(work, { recursive: true, force: true });
  }
}

await main();
