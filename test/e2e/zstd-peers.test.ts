/**
 * gantry's zstd layers are independent 4 MiB frames, one after another (zstd-block.ts). The
 * zstd tool reads them as one stream (test/unit/compression-zstd.test.ts); here the Go
 * decoder that containerd, podman and skopeo use (containers/image, klauspost/compress)
 * does too: skopeo decompresses a built layer of several frames, and what it gets must be
 * the tar the image's config names by its diff_id. A decoder that stopped after the first
 * frame would give a shorter tar, of another digest.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { sha256File } from "../helpers/archive.js";
import { runGantry } from "../helpers/gantry.js";
import { tmpDir } from "../helpers/tmp.js";
import { peerTest, requireTools, skopeo } from "../helpers/tools.js";
import { FRAME_SIZE } from "../../src/compression/zstd-block.js";

peerTest("skopeo decompresses a zstd layer of several frames to the tar its diff_id names", async (t) => {
  requireTools("skopeo");
  const dir = await tmpDir(t);
  const src = join(dir, "src");
  await mkdir(src);
  // Incompressible and compressible parts, 3.5 frames' worth of tar in all.
  await writeFile(join(src, "random.bin"), randomBytes(2 * FRAME_SIZE));
  await writeFile(join(src, "text.txt"), Buffer.alloc(1.5 * FRAME_SIZE, "gantry writes zstd frames\n"));
  const spec = join(dir, "spec.json");
  await writeFile(spec, JSON.stringify({ name: "frames", tag: "1", copyToRoot: [src], compressor: "zstd" }));
  const built = await runGantry(["build", spec, "-o", `oci:${join(dir, "oci")}:frames`, "--no-cache", "--quiet"]);
  assert.equal(built.code, 0, built.stderr);

  await skopeo("copy", "--dest-decompress", `oci:${join(dir, "oci")}:frames`, `dir:${join(dir, "plain")}`);
  const manifest = JSON.parse(await readFile(join(dir, "plain", "manifest.json"), "utf8")) as { config: { digest: string }; layers: { digest: string }[] };
  const config = JSON.parse(await readFile(join(dir, "plain", manifest.config.digest.slice("sha256:".length)), "utf8")) as { rootfs: { diff_ids: string[] } };
  assert.equal(manifest.layers.length, 1);
  const tar = join(dir, "plain", manifest.layers[0]!.digest.slice("sha256:".length));
  assert.equal(await sha256File(tar), config.rootfs.diff_ids[0]);
  assert.ok((await readFile(tar)).length > 3 * FRAME_SIZE, "the layer spans several frames");
});
