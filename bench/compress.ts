/**
 * gantry's gzip beside the compressors it stands in for, on the same tar, in one run.
 *
 *   npx tsc -p . && node dist/bench/compress.js [SOURCE_DIR] [MEGABYTES] [RUNS]
 *
 * Copies about MEGABYTES (default 300) of SOURCE_DIR (default /usr/lib) into a temporary
 * directory, makes one tar of it with GNU tar, then compresses that tar file to a file with:
 *   gantry gzip -6        compressor("gzip"): blocks on worker threads (all cores, at most 8)
 *   gantry gzip -6, 1 thread   the same format and bytes, one worker
 *   node createGzip -6    Node's zlib on one thread (what gantry used before)
 *   gzip -6, pigz -6, zstd -3 -T0   the peer tools (each skipped when not installed)
 * Each contender runs RUNS times (default 1); the fastest run is kept. Wall time, CPU time
 * (user + system, all threads), output size, and time and size relative to pigz are
 * printed. The page cache is warmed first, so every contender reads from memory.
 *
 * A second table times small inputs (the head of the same tar): workers from the first
 * block, the calling thread only, and the default threshold between the two.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createReadStream, createWriteStream, readFileSync, statSync } from "node:fs";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, type Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { compressor } from "../src/compression/compression.js";
import { createParallelGzip, DEFAULT_PARALLEL_AFTER } from "../src/compression/parallel-gzip.js";
import { defaultCompressionThreads } from "../src/compression/parallel-blocks.js";
import { copySome, has, mb, printTable, timeAsync, timeShell, type Row } from "./lib.js";

const source = process.argv[2] ?? "/usr/lib";
const budget = Number(process.argv[3] ?? 300) * 1024 * 1024;
const runs = Math.max(1, Number(process.argv[4] ?? 1));

interface Measured extends Row { bytes: number; cpu: number }

/** CPU seconds (user + system) of this process's threads, and of its finished children. */
function cpuSeconds(): { self: number; children: number } {
  const usage = process.cpuUsage();
  // /proc/self/stat fields 16 and 17: cutime and cstime of waited-for children, in clock ticks.
  const fields = readFileSync("/proc/self/stat", "utf8").split(") ")[1]?.split(" ") ?? [];
  const ticks = Number(fields[13] ?? 0) + Number(fields[14] ?? 0);
  return { self: (usage.user + usage.system) / 1e6, children: ticks / 100 };
}

async function timeNode(name: string, tar: string, out: string, make: () => Transform): Promise<Measured> {
  const before = cpuSeconds();
  const { seconds } = await timeAsync(() => pipeline(createReadStream(tar), make(), createWriteStream(out)));
  return { name, seconds, cpu: cpuSeconds().self - before.self, bytes: (await stat(out)).size };
}

function timeTool(name: string, script: string, out: string): Measured {
  const before = cpuSeconds();
  const seconds = timeShell(script);
  return { name, seconds, cpu: cpuSeconds().children - before.children, bytes: statSync(out).size };
}

/** Runs `measure` `runs` times and keeps the fastest. */
async function fastest(measure: () => Promise<Measured> | Measured): Promise<Measured> {
  let best: Measured | undefined;
  for (let i = 0; i < runs; i++) {
    const m = await measure();
    if (best === undefined || m.seconds < best.seconds) best = m;
  }
  if (best === undefined) throw new Error("no run");
  return best;
}

async function largeTable(tar: string, work: string): Promise<void> {
  const out = (name: string): string => join(work, name);
  const rows: Measured[] = [];
  const threads = defaultCompressionThreads();
  rows.push(await fastest(() => timeNode(`gantry gzip -6 (${threads} threads)`, tar, out("gantry.gz"), () => compressor("gzip", 6))));
  rows.push(await fastest(() => timeNode("gantry gzip -6, 1 thread", tar, out("gantry1.gz"), () => createParallelGzip({ level: 6, threads: 1 }))));
  rows.push(await fastest(() => timeNode("node createGzip -6", tar, out("node.gz"), () => createGzip({ level: 6, chunkSize: 64 * 1024 }))));
  if (has("gzip")) rows.push(await fastest(() => timeTool("gzip -6", `gzip -6 -c ${tar} > ${out("gzip.gz")}`, out("gzip.gz"))));
  if (has("pigz")) rows.push(await fastest(() => timeTool("pigz -6", `pigz -6 -c ${tar} > ${out("pigz.gz")}`, out("pigz.gz"))));
  if (has("zstd")) rows.push(await fastest(() => timeTool("zstd -3 -T0", `zstd -q -3 -T0 -c ${tar} > ${out("x.zst")}`, out("x.zst"))));

  printTable(rows, has("pigz") ? "pigz -6" : "node createGzip -6");
  console.log("\nCPU seconds (user + system, every thread):");
  for (const r of rows) console.log(`  ${r.name.padEnd(32)}${r.cpu.toFixed(2).padStart(8)}`);

  const same = (await readFile(out("gantry.gz"))).equals(await readFile(out("gantry1.gz")));
  console.log(`\ngantry's output with ${threads} threads and with 1 is ${same ? "byte-identical" : "DIFFERENT"}`);
  if (has("gzip")) {
    const check = spawnSync("gzip", ["-t", out("gantry.gz")], { stdio: "inherit" });
    console.log(`gzip -t of gantry's output: ${check.status === 0 ? "ok" : "FAILED"}`);
  }
}

/** `input` in 64 KiB pieces, one per turn of the event loop, as a file or a tar writer gives them. */
async function* chunksOf(input: Buffer): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < input.length; offset += 64 * 1024) {
    await new Promise((resolve) => setImmediate(resolve));
    yield input.subarray(offset, offset + 64 * 1024);
  }
}

async function smallTable(tar: string): Promise<void> {
  const head = await readFile(tar);
  const sizes = [1, 2, 4, 8, 16].map((m) => m * 1024 * 1024).filter((n) => n <= head.length);
  const repeats = 5;
  const modes: Array<[string, () => Transform]> = [
    ["workers from the first block", () => createParallelGzip({ level: 6, parallelAfter: 0 })],
    ["calling thread only", () => createParallelGzip({ level: 6, threads: 0 })],
    [`default (workers after ${mb(DEFAULT_PARALLEL_AFTER)})`, () => createParallelGzip({ level: 6 })],
  ];
  console.log(`\nSmall inputs (fastest of ${repeats}; ms):`);
  console.log(`${"input".padEnd(10)}${modes.map(([name]) => name.padStart(34)).join("")}`);
  for (const size of sizes) {
    const input = head.subarray(0, size);
    const cells: string[] = [];
    for (const [, make] of modes) {
      let best = Infinity;
      for (let i = 0; i < repeats; i++) {
        const { seconds } = await timeAsync(() => pipeline(Readable.from(chunksOf(input)), make(), async (source: AsyncIterable<Buffer>) => {
          for await (const _ of source) { /* discard */ }
        }));
        best = Math.min(best, seconds);
      }
      cells.push(`${(best * 1000).toFixed(0)}`.padStart(34));
    }
    console.log(`${mb(size).padEnd(10)}${cells.join("")}`);
  }
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "gantry-bench-compress-"));
  try {
    const copied = await copySome(source, join(work, "tree"), budget);
    const tar = join(work, "tree.tar");
    execFileSync("tar", ["-cf", tar, "-C", join(work, "tree"), "."]);
    await rm(join(work, "tree"), { recursive: true, force: true });
    timeShell(`cat ${tar} > /dev/null`);
    console.log(`${copied.files} files from ${source}: a tar of ${mb((await stat(tar)).size)}; ${runs} run(s) each`);
    await largeTable(tar, work);
    await smallTable(tar);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
