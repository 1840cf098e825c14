/**
 * packLayer against the shell pipelines it replaces, on the same tree, in one run.
 *
 *   npx tsc -p . && node dist/bench/pack-layer.js [SOURCE_DIR] [MEGABYTES]
 *
 * Copies about MEGABYTES (default 200) of SOURCE_DIR (default /usr/lib) into a temporary
 * directory, then times, each on that copy:
 *   gantry   walkSources + diffLayer (empty base) + packLayer, gzip level 6
 *   gzip     tar -c | gzip -6
 *   pigz     tar -c | pigz -6      (skipped when pigz is not installed)
 * and prints wall time, output size and the ratios to gantry. The page cache is warmed
 * first, so every contender reads from memory.
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BlobStore } from "../src/cache/blob-store.js";
import { diffLayer } from "../src/layer/differ.js";
import { packLayer } from "../src/layer/pack.js";
import { walkSources } from "../src/layer/sources.js";
import { FileTree } from "../src/layer/tree.js";
import { copySome, has, mb, timeShell } from "./lib.js";

const source = process.argv[2] ?? "/usr/lib";
const budget = Number(process.argv[3] ?? 200) * 1024 * 1024;

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "gantry-bench-pack-"));
  try {
    const tree = join(work, "tree");
    const state = { bytes: 0, files: 0 };
    await copySome(source, tree, budget, state);
    execFileSync("bash", ["-c", `tar -C ${tree} -cf - . > /dev/null`]); // warm the page cache
    console.log(`tree: ${state.files} files, ${mb(state.bytes)} copied from ${source}`);

    const t0 = process.hrtime.bigint();
    const sources = await walkSources([{ from: tree, to: "/" }]);
    const entries = await diffLayer(new FileTree(), sources, { uid: 0, gid: 0, uname: "", gname: "", mtime: 1, perms: [], deletions: false });
    const t1 = process.hrtime.bigint();
    const layer = await packLayer(entries, { compression: "gzip", level: 6, store: new BlobStore(join(work, "store")), describe: "bench layer" });
    const t2 = process.hrtime.bigint();
    const walkSeconds = Number(t1 - t0) / 1e9;
    const gantrySeconds = Number(t2 - t0) / 1e9;
    const rows: Array<{ name: string; seconds: number; bytes: number }> = [
      { name: "gantry packLayer gzip -6", seconds: gantrySeconds, bytes: layer.size },
    ];
    console.log(`gantry: walk + diff ${walkSeconds.toFixed(2)} s (${entries.length} entries), pack ${(gantrySeconds - walkSeconds).toFixed(2)} s`);

    const gz = timeShell(`tar -C ${tree} --sort=name -cf - . | gzip -6 > ${work}/gzip.tar.gz`);
    rows.push({ name: "tar | gzip -6", seconds: gz, bytes: (await stat(`${work}/gzip.tar.gz`)).size });
    if (has("pigz")) {
      const pz = timeShell(`tar -C ${tree} --sort=name -cf - . | pigz -6 > ${work}/pigz.tar.gz`);
      rows.push({ name: "tar | pigz -6", seconds: pz, bytes: (await stat(`${work}/pigz.tar.gz`)).size });
    }

    console.log("");
    console.log(`${"contender".padEnd(28)}${"wall".padStart(10)}${"output".padStart(12)}${"time vs gantry".padStart(16)}${"size vs gantry".padStart(16)}`);
    for (const r of rows) {
      console.log(`${r.name.padEnd(28)}${`${r.seconds.toFixed(2)} s`.padStart(10)}${mb(r.bytes).padStart(12)}${`${(r.seconds / gantrySeconds).toFixed(2)}x`.padStart(16)}${`${(r.bytes / layer.size).toFixed(3)}x`.padStart(16)}`);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
