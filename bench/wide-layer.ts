/**
 * What one very wide layer costs the commands that read it whole: a docker-archive of one
 * layer of FILES empty files (1,000 to a directory), gzip and zstd, read by `gantry diff`
 * (against itself, and against a small image, which lists every path) and `gantry export`
 * to a tar. Time and peak RSS (GNU time's maximum resident set) per command.
 *
 *   npm run build && node dist/bench/wide-layer.js [FILES]
 *
 * The layer is written by gantry's own tar writer (packing it is not what is measured).
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeDockerArchive } from "../src/transports/docker-archive/write.js";
import { packLayer } from "../src/layer/pack.js";
import { imageFromParts } from "../src/image/image.js";
import { BlobStore } from "../src/cache/blob-store.js";
import type { LayerEntry } from "../src/layer/differ.js";
import type { Compression } from "../src/model/mediatypes.js";
import { gantry, has, timeShell } from "./lib.js";

const small = fileURLToPath(new URL("../../test/fixtures/formats/skopeo-app.tar", import.meta.url));
const files = Number(process.argv[2] ?? 800_000);

function* emptyFiles(count: number): Generator<LayerEntry> {
  const common = { mode: 0o644, uid: 0, gid: 0, uname: "", gname: "", mtime: 946684800 } as const;
  for (let d = 0; d * 1000 < count; d++) {
    const dir = `usr/share/many/d${String(d).padStart(4, "0")}`;
    yield { ...common, path: dir, type: "dir", mode: 0o755, size: 0 };
    for (let f = 0; f < 1000 && d * 1000 + f < count; f++) yield { ...common, path: `${dir}/file-${String(f).padStart(5, "0")}.txt`, type: "file", size: 0 };
  }
}

async function wideImage(work: string, compression: Compression): Promise<string> {
  const store = new BlobStore(join(work, `store-${compression}`));
  const layer = await packLayer([...emptyFiles(files)], { compression, store, describe: "the wide layer" });
  const config = Buffer.from(JSON.stringify({
    architecture: "amd64", os: "linux", created: "2000-01-01T00:00:00Z", rootfs: { type: "layers", diff_ids: [layer.diffId] },
  }));
  const path = join(work, `wide-${compression}.tar`);
  await writeDockerArchive(path, [{ doc: imageFromParts({ configBytes: config, layers: [layer] }, "the wide image"), repoTags: ["bench/wide:1"] }]);
  return path;
}

async function measured(work: string, name: string, args: string): Promise<{ name: string; seconds: number; rssMb: number }> {
  const rss = join(work, "rss");
  const seconds = timeShell(`/usr/bin/time -f %M -o ${rss} ${gantry} ${args} > /dev/null 2>&1`, { ...process.env, GANTRY_CACHE: join(work, "cache") });
  return { name, seconds, rssMb: Number((await readFile(rss, "utf8")).trim()) / 1024 };
}

if (!has("/usr/bin/time")) throw new Error("GNU time (/usr/bin/time) is needed");
const work = await mkdtemp(join(tmpdir(), "gantry-wide-"));
try {
  const rows = [];
  for (const compression of ["gzip", "zstd"] as const) {
    const image = await wideImage(work, compression);
    rows.push(await measured(work, `diff ${compression}, itself`, `diff ${image} ${image}`));
    rows.push(await measured(work, `diff ${compression}, a small image`, `diff ${image} ${small}`));
    rows.push(await measured(work, `export ${compression} to a tar`, `export ${image} -o ${join(work, "rootfs.tar")}`));
    spawnSync("rm", ["-f", join(work, "rootfs.tar")]);
  }
  console.log(`one layer of ${files.toLocaleString("en")} empty files`);
  console.log("| command | wall (s) | peak RSS (MB) |\n| --- | --- | --- |");
  for (const r of rows) console.log(`| ${r.name} | ${r.seconds.toFixed(1)} | ${r.rssMb.toFixed(0)} |`);
} finally {
  await rm(work, { recursive: true, force: true });
}
