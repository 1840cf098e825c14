/**
 * Choosing gzip's default level: gantry's gzip (block-parallel, all cores) at levels 1–6 on
 * one tar, beside `gzip -6` for size, in one run.
 *
 *   npm run build && node dist/bench/levels.js [SOURCE_DIR] [MEGABYTES]
 *
 * The default is the fastest level whose output stays within 6% of `gzip -6`'s size (the
 * bound the speed issue set), measured here rather than assumed.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createParallelGzip } from "../src/compression/parallel-gzip.js";
import { DEFAULT_GZIP_LEVEL } from "../src/compression/compression.js";
import { copySome, mb, timeAsync, timeShell } from "./lib.js";

const source = process.argv[2] ?? "/usr/lib";
const budget = Number(process.argv[3] ?? 338) * 1024 * 1024;

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "gantry-bench-levels-"));
  try {
    const copied = await copySome(source, join(work, "tree"), budget);
    const tar = join(work, "t.tar");
    timeShell(`tar -C ${work}/tree --sort=name -cf ${tar} .`);
    const tarSize = (await stat(tar)).size;
    const gzipSeconds = timeShell(`gzip -6 -c ${tar} > ${work}/ref.gz`);
    const reference = (await stat(`${work}/ref.gz`)).size;
    console.log(`tar of ${copied.files} files, ${mb(tarSize)}; gzip -6: ${gzipSeconds.toFixed(2)} s, ${mb(reference)}\n`);
    console.log(`${"level".padEnd(8)}${"wall".padStart(10)}${"output".padStart(12)}${"size / gzip -6".padStart(16)}`);
    for (const level of [1, 2, 3, 4, 5, 6]) {
      const out = join(work, `l${level}.gz`);
      const { seconds } = await timeAsync(() => pipeline(createReadStream(tar, { highWaterMark: 1 << 20 }), createParallelGzip({ level }), createWriteStream(out)));
      const size = (await stat(out)).size;
      const mark = level === DEFAULT_GZIP_LEVEL ? "  <- default" : "";
      console.log(`${String(level).padEnd(8)}${`${seconds.toFixed(2)} s`.padStart(10)}${mb(size).padStart(12)}${`${(size / reference).toFixed(3)}x`.padStart(16)}${mark}`);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
