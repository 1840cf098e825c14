/**
 * A whole image build, side by side with the peer tools on the same tree, in one run.
 *
 *   npm run build && node dist/bench/build.js [SOURCE_DIR] [MEGABYTES]
 *
 * Copies about MEGABYTES (default 380) of SOURCE_DIR (default /usr/lib) into a temporary
 * tree, warms the page cache, then times, each making one gzip layer of that tree:
 *   gantry build        the CLI, a spec with copyToRoot = the tree, --no-cache (full work)
 *   gantry first build  the same with an empty cache, as a user's first build (files hashed for the key too)
 *   gantry no-op        the same spec built again with a warm cache (nothing to pack), to the
 *                       archive the cached build wrote (left as it is), and to a new file
 *   gantry build zstd   the same with "compressor": "zstd"
 *   umoci repack        the tree already in an unpacked bundle (umoci's own tar + gzip)
 *   buildah commit      `buildah copy` untimed, then `commit --disable-compression=false` to oci-archive:
 *   tar | gzip -6, tar | pigz -6, tar | zstd -3 -T0   the shell pipelines
 *   floors              what no gantry command can go under on this machine: node starting and
 *                       exiting (`node -e 0`), `gantry --version` (the CLI loaded), and the tar
 *                       deflated at gantry's level on every core by node's zlib alone
 *                       (deflate-floor.ts): no walk, digest or write
 * Tools that are not installed are skipped. Ratios are relative to gantry build; gantry's
 * peak RSS (GNU time's maximum resident set) is printed after the table.
 */
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_GZIP_LEVEL } from "../src/compression/compression.js";
import { copySome, gantry, has, mb, median, printTable, timeShell, type Row } from "./lib.js";

const source = process.argv[2] ?? "/usr/lib";
const budget = Number(process.argv[3] ?? 380) * 1024 * 1024;

const peakRss: string[] = [];

/** `gantry build` of the tree under GNU time: its wall time, output size, and peak RSS noted. */
async function gantryRow(work: string, tree: string, compressor: "gzip" | "zstd", cache: "none" | "cold" | "warm" | "warm-new" = "none", label = ""): Promise<Row> {
  const spec = join(work, `spec-${compressor}.json`);
  // A warm rebuild writes where the cold one did (the archive there is left as it is), or to a new file.
  const out = join(work, `gantry-${compressor}-${cache === "warm" ? "cold" : cache}.tar`);
  await writeFile(spec, JSON.stringify({ name: "bench", tag: "1", copyToRoot: [tree], compressor }));
  const rss = join(work, "rss");
  const cacheFlag = cache === "none" ? "--no-cache" : "";
  const env = { ...process.env, GANTRY_CACHE: join(work, "cache") };
  const seconds = timeShell(`/usr/bin/time -f %M -o ${rss} ${gantry} build ${spec} -o ${out} ${cacheFlag} --quiet`, env);
  const name = cache === "cold" ? `gantry build, first with an empty cache (${compressor})`
    : cache === "warm" ? `gantry no-op rebuild${label} (${compressor})`
    : cache === "warm-new" ? `gantry no-op rebuild to a new file (${compressor})` : `gantry build (${compressor})`;
  peakRss.push(`${name}: ${(Number((await readFile(rss, "utf8")).trim()) / 1024).toFixed(0)} MB`);
  return { name, seconds, bytes: (await stat(out)).size };
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "gantry-bench-build-"));
  try {
    const tree = join(work, "tree");
    const copied = await copySome(source, tree, budget);
    timeShell(`tar -C ${tree} -cf - . > /dev/null`); // warm the page cache
    console.log(`tree: ${copied.files} files, ${mb(copied.bytes)} from ${source}; ${availableParallelism()} cores`);

    const rows: Row[] = [await gantryRow(work, tree, "gzip")];
    // A user's first build: the cache empty, so every file is also hashed for the key.
    rows.push(await gantryRow(work, tree, "gzip", "cold"));
    // The first rebuild after a write hashes the archive once (its record was made within the
    // write's clock tick); later ones only lstat it.
    rows.push(await gantryRow(work, tree, "gzip", "warm", ", the first"));
    rows.push(await gantryRow(work, tree, "gzip", "warm"));
    rows.push(await gantryRow(work, tree, "gzip", "warm-new"));
    if (has("umoci")) {
      const L = join(work, "umoci-layout");
      const B = join(work, "umoci-bundle");
      timeShell(`umoci init --layout ${L} && umoci new --image ${L}:t && umoci unpack --image ${L}:t ${B} && cp -a ${tree}/. ${B}/rootfs/`);
      const seconds = timeShell(`umoci repack --image ${L}:t ${B}`);
      rows.push({ name: "umoci repack", seconds, bytes: await layoutLargestBlob(L) });
    }
    if (has("buildah")) {
      const root = join(work, "buildah-root");
      const run = join(work, "buildah-run");
      const b = `buildah --root ${root} --runroot ${run} --storage-driver vfs`;
      const out = join(work, "buildah.tar");
      timeShell(`c=$(${b} from scratch) && ${b} copy $c ${tree} / >/dev/null && echo $c > ${work}/buildah-container`);
      const seconds = timeShell(`${b} commit --quiet --disable-compression=false $(cat ${work}/buildah-container) oci-archive:${out} >/dev/null`);
      rows.push({ name: "buildah commit (gzip oci-archive)", seconds, bytes: (await stat(out)).size });
      timeShell(`${b} rm --all >/dev/null; ${b} rmi --all --force >/dev/null 2>&1 || true`);
    }
    rows.push({ name: "tar | gzip -6", seconds: timeShell(`tar -C ${tree} --sort=name -cf - . | gzip -6 > ${work}/t.gz`), bytes: (await stat(`${work}/t.gz`)).size });
    if (has("pigz")) rows.push({ name: "tar | pigz -6", seconds: timeShell(`tar -C ${tree} --sort=name -cf - . | pigz -6 > ${work}/t.pgz`), bytes: (await stat(`${work}/t.pgz`)).size });
    rows.push(await gantryRow(work, tree, "zstd"));
    if (has("zstd")) rows.push({ name: "tar | zstd -3 -T0", seconds: timeShell(`tar -C ${tree} --sort=name -cf - . | zstd -q -3 -T0 > ${work}/t.zst`), bytes: (await stat(`${work}/t.zst`)).size });
    rows.push(...floorRows(work, tree));
    printTable(rows, "gantry build (gzip)");
    console.log(`\ngantry peak RSS: ${peakRss.join("; ")}`);
  } finally {
    timeShell(`umount -R ${work}/buildah-root/* 2>/dev/null; true`);
    await rm(work, { recursive: true, force: true });
  }
}

/** Start-up and deflate alone, on the same tree (see the header): the floors under the rows above. */
function floorRows(work: string, tree: string): Row[] {
  const startups = (command: string): number => median(Array.from({ length: 5 }, () => timeShell(command)));
  const tar = join(work, "floor.tar");
  timeShell(`tar -C ${tree} --sort=name -cf ${tar} .`);
  const deflateFloor = fileURLToPath(new URL("./deflate-floor.js", import.meta.url));
  return [
    { name: "floor: node -e 0 (median of 5)", seconds: startups("node -e 0") },
    { name: "floor: gantry --version (median of 5)", seconds: startups(`${gantry} --version`) },
    { name: `floor: deflate alone, level ${DEFAULT_GZIP_LEVEL}`, seconds: timeShell(`node ${deflateFloor} ${tar} ${DEFAULT_GZIP_LEVEL} >/dev/null`) },
  ];
}

/** The largest blob of an OCI layout: its one layer. */
async function layoutLargestBlob(layout: string): Promise<number> {
  const dir = join(layout, "blobs", "sha256");
  let largest = 0;
  for (const name of await readdir(dir)) largest = Math.max(largest, (await stat(join(dir, name))).size);
  return largest;
}

await main();
