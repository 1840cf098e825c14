/**
 * gantry push and pull beside `skopeo copy`, the same image, the same kind of registry, one run.
 *
 *   npx tsc -p . && node dist/bench/registry.js [MEGABYTES]
 *
 * Makes an image of about MEGABYTES (default 50) of gzip layers (three layers, 60/30/10 %,
 * each random bytes plus a quarter as much text, so the stored size is about MEGABYTES), written once as an
 * OCI layout. Two fresh distribution registries on loopback, one per tool, so neither finds
 * blobs the other pushed. Then times:
 *   push   gantry pushImage(oci:LAYOUT)       vs  skopeo copy oci:LAYOUT docker://…
 *   pull   gantry pullImage(→ oci:DIR, no cache) vs skopeo copy docker://… oci:DIR
 * Layers are already compressed: both tools send them as they are and verify digests.
 * gantry's first push and pull run in a fresh process, as a CLI run would (module loading
 * and JIT warm-up included); they are then repeated against a third fresh registry, to show
 * the steady state a library user sees.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pack as tarPack } from "tar-stream";
import { resolveReference } from "../src/transports/reference.js";
import { imageFromParts } from "../src/image/image.js";
import { compressor } from "../src/compression/compression.js";
import { sha256 } from "../src/model/digest.js";
import type { Image, Layer } from "../src/model/image.js";
import { makeLayer } from "../src/image/layer.js";
import type { ImageConfigJson } from "../src/model/oci.js";
import { pullImage, pushImage } from "../src/ops/copy.js";
import { startRegistry } from "../test/helpers/registry.js";

const megabytes = Number(process.argv[2] ?? 50);

async function collect(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** A one-file layer of `bytes` random bytes plus a quarter as much text, gzip-compressed, in memory. */
async function makeBenchLayer(index: number, bytes: number): Promise<Layer> {
  const text = Buffer.alloc(Math.floor(bytes / 4), `layer ${index}: the quick brown fox jumps over the lazy dog\n`);
  const content = Buffer.concat([randomBytes(bytes), text]);
  const pack = tarPack();
  pack.entry({ name: `data-${index}.bin`, mode: 0o644, mtime: new Date(0) }, content);
  pack.finalize();
  const tar = await collect(pack);
  const gz = await collect(Readable.from([tar]).pipe(compressor("gzip")));
  return makeLayer({
    digest: sha256(gz), diffId: sha256(tar), size: gz.length, compression: "gzip",
    describe: `bench layer ${index}`, openRaw: () => Promise.resolve(Readable.from([gz])),
  });
}

function timeCommand(cmd: string, args: string[]): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: ["ignore", "ignore", "inherit"] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed`);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function timeAsync(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "gantry-bench-registry-"));
  const total = megabytes * 1024 * 1024;
  const layers = await Promise.all([0.6, 0.3, 0.1].map((share, i) => makeBenchLayer(i + 1, Math.round(total * share))));
  const config: ImageConfigJson = {
    architecture: "amd64", os: "linux", created: "1970-01-01T00:00:01Z",
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const image: Image = imageFromParts({ configBytes, config, layers }, "the bench config");
  const layout = join(work, "layout");
  await (await resolveReference(`oci:${layout}:1`, "write")).write([{ doc: image, repoTags: ["bench/image:1"] }]);
  const stored = layers.reduce((n, l) => n + l.size, 0);

  const ours = await startRegistry();
  const theirs = await startRegistry();
  const again = await startRegistry();
  try {
    const gPush = await timeAsync(() => pushImage({ src: `oci:${layout}:1`, ref: `docker://${ours.host}/bench/image:1` }));
    const sPush = timeCommand("skopeo", ["copy", "--quiet", "--dest-tls-verify=false", `oci:${layout}:1`, `docker://${theirs.host}/bench/image:1`]);
    const gPull = await timeAsync(() => pullImage({ ref: `docker://${ours.host}/bench/image:1`, dest: `oci:${join(work, "g-pulled")}:1`, noCache: true }));
    const sPull = timeCommand("skopeo", ["copy", "--quiet", "--src-tls-verify=false", `docker://${theirs.host}/bench/image:1`, `oci:${join(work, "s-pulled")}:1`]);
    const gPushWarm = await timeAsync(() => pushImage({ src: `oci:${layout}:1`, ref: `docker://${again.host}/bench/image:1` }));
    const gPullWarm = await timeAsync(() => pullImage({ ref: `docker://${again.host}/bench/image:1`, dest: `oci:${join(work, "g-pulled-2")}:1`, noCache: true }));

    const row = (what: string, g: number, s: number): string =>
      `| ${what} | ${g.toFixed(2)} s | ${s.toFixed(2)} s | ${(g / s).toFixed(2)} |`;
    console.log(`image: ${layers.length} gzip layers, ${(stored / 1e6).toFixed(1)} MB stored`);
    console.log("| step | gantry | skopeo copy | gantry / skopeo |");
    console.log("| --- | --- | --- | --- |");
    console.log(row("push (oci layout → registry), first in process", gPush, sPush));
    console.log(row("pull (registry → oci layout), first in process", gPull, sPull));
    console.log(row("push, warm process", gPushWarm, sPush));
    console.log(row("pull, warm process", gPullWarm, sPull));
  } finally {
    await ours.stop();
    await theirs.stop();
    await again.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
