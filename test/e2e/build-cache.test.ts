/**
 * SPEC "Cache", through the command line with GANTRY_CACHE set to a temporary directory:
 * a rebuild reuses the stored layer and reads none of the base's layers, an edit that
 * hides from size and mtime is still seen, deleting the cache changes no byte, and
 * `--no-cache` leaves the cache untouched. The base is umoci's OCI layout in
 * test/fixtures/formats/oci-umoci; archives are judged by GNU tar and skopeo.
 */
import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import { execFileSync } from "node:child_process";
import { cp, lstat, mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { sha256 } from "../../src/model/digest.js";
import { runGantry } from "../helpers/gantry.js";
import { REPO_ROOT } from "../helpers/paths.js";
import { settle } from "../helpers/settle.js";
import { tmpDir } from "../helpers/tmp.js";
import { peerTest, skopeoJson } from "../helpers/tools.js";
import { fileInTopLayer } from "../helpers/archive.js";

const UMOCI_LAYOUT = join(REPO_ROOT, "test/fixtures/formats/oci-umoci");

interface BuiltJson { layers: Array<{ digest: string; diffId: string; base: boolean; cached: boolean }> }

interface Case {
  dir: string;
  cache: string;
  /** Writes spec.json (fields over a fixed name, tag and created) and builds it to `out`. */
  build(spec: Record<string, unknown>, out: string, ...flags: string[]): Promise<BuiltJson>;
}

async function makeCase(t: TestContext, files: Record<string, string>): Promise<Case> {
  const dir = await tmpDir(t, "gantry-cache-e2e-");
  const cache = join(dir, "cache");
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(join(dir, "root", rel, ".."), { recursive: true });
    await writeFile(join(dir, "root", rel), content);
  }
  return {
    dir,
    cache,
    async build(spec, out, ...flags) {
      const specPath = join(dir, "spec.json");
      await writeFile(specPath, JSON.stringify({ name: "cache-e2e", tag: "1", created: "2024-01-02T03:04:05Z", copyToRoot: "./root", ...spec }));
      const r = await runGantry(["--json", "build", specPath, "-o", join(dir, out), ...flags], { env: { GANTRY_CACHE: cache } });
      assert.equal(r.code, 0, `gantry build ${out} failed: ${r.stderr}`);
      return JSON.parse(r.stdout.toString("utf8")) as BuiltJson;
    },
  };
}

const cachedFlags = (r: BuiltJson): boolean[] => r.layers.filter((l) => !l.base).map((l) => l.cached);

peerTest("a rebuild reuses the layer: the same archive, the blob untouched, and skopeo reads it", async (t) => {
  const c = await makeCase(t, { "app/hello.txt": "hello\n", "app/data.bin": "x".repeat(100_000) });
  await settle(c.dir);
  const spec = { fromImage: `oci:${UMOCI_LAYOUT}:base` };
  const first = await c.build(spec, "first.tar");
  assert.deepEqual(cachedFlags(first), [false]);
  const [entry] = await readdir(join(c.cache, "layers"));
  assert.match(entry ?? "", /^[0-9a-f]{64}\.json$/, "one index entry, named by its key");
  const blob = join(c.cache, "blobs/sha256", first.layers.at(-1)!.digest.slice("sha256:".length));
  const before = await lstat(blob, { bigint: true });

  const second = await c.build(spec, "second.tar");
  assert.deepEqual(cachedFlags(second), [true]);
  assert.ok((await readFile(join(c.dir, "second.tar"))).equals(await readFile(join(c.dir, "first.tar"))), "the archives differ");
  const after = await lstat(blob, { bigint: true });
  assert.equal(after.ino, before.ino, "the cached blob was written again");
  assert.ok(after.mtimeNs >= before.mtimeNs, "a hit marks the blob used (its mtime, which cache prune goes by)");
  // skopeo names a docker-archive's layers by their uncompressed digests.
  const inspected = await skopeoJson<{ Layers: string[] }>("inspect", `docker-archive:${join(c.dir, "second.tar")}`);
  assert.deepEqual(inspected.Layers, second.layers.map((l) => l.diffId));
  assert.equal(fileInTopLayer(join(c.dir, "second.tar"), "app/hello.txt"), "hello\n");
});

/**
 * A copy of the umoci layout whose "base" image keeps its config (and so its diff_ids)
 * but whose layer blob holds another tar: its digest checks out, its diff_id does not.
 * Only reading the layer's content can tell.
 */
async function layoutWithLyingLayer(dir: string): Promise<string> {
  const layout = join(dir, "lying");
  await cp(UMOCI_LAYOUT, layout, { recursive: true });
  const blobPath = (digest: string): string => join(layout, "blobs/sha256", digest.slice("sha256:".length));
  const index = JSON.parse(await readFile(join(layout, "index.json"), "utf8")) as { manifests: Array<{ digest: string; size: number; annotations?: Record<string, string> }> };
  const entry = index.manifests.find((m) => m.annotations?.["org.opencontainers.image.ref.name"] === "base");
  assert.ok(entry !== undefined, "the fixture has a 'base' image");
  const manifest = JSON.parse(await readFile(blobPath(entry.digest), "utf8")) as { layers: Array<{ digest: string; size: number }> };
  await mkdir(join(dir, "other"));
  await writeFile(join(dir, "other/other.txt"), "not what the diff_id says\n");
  const otherLayer = execFileSync("sh", ["-c", `tar -C "${join(dir, "other")}" -cf - . | gzip -n`]);
  manifest.layers[0] = { ...manifest.layers[0]!, digest: sha256(otherLayer), size: otherLayer.length };
  await writeFile(blobPath(sha256(otherLayer)), otherLayer);
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  await writeFile(blobPath(sha256(manifestBytes)), manifestBytes);
  Object.assign(entry, { digest: sha256(manifestBytes), size: manifestBytes.length });
  await writeFile(join(layout, "index.json"), JSON.stringify(index));
  return layout;
}

test("a hit reads none of the base's layers to make its own; copying them into the image checks them", async (t) => {
  const c = await makeCase(t, { "app.txt": "app\n" });
  const lying = await layoutWithLyingLayer(c.dir);
  await settle(c.dir);
  // Without the cache, comparing with the base reads the lying layer, and the build fails.
  const specPath = join(c.dir, "spec.json");
  await writeFile(specPath, JSON.stringify({ name: "cache-e2e", tag: "1", fromImage: `oci:${lying}:base`, copyToRoot: "./root" }));
  const refused = await runGantry(["build", specPath, "-o", join(c.dir, "refused.tar"), "--no-cache"], { env: { GANTRY_CACHE: c.cache } });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /diff_id|sha256|digest/i);

  const honest = await c.build({ fromImage: `oci:${UMOCI_LAYOUT}:base` }, "honest.tar");
  assert.deepEqual(cachedFlags(honest), [false]);
  // On the lying base, the new layer is a hit: its key needs only the base's diff_ids. The
  // image then holds the base layer, and the copy of it checks it whole: the lie is refused
  // there, and the image is not written.
  await writeFile(specPath, JSON.stringify({ name: "cache-e2e", tag: "1", created: "2024-01-02T03:04:05Z", copyToRoot: "./root", fromImage: `oci:${lying}:base` }));
  const reused = await runGantry(["build", specPath, "-o", join(c.dir, "reused.tar")], { env: { GANTRY_CACHE: c.cache } });
  assert.match(reused.stderr, new RegExp(`layer 1/1 unchanged: ${honest.layers.at(-1)!.digest} from the cache`));
  assert.equal(reused.code, 1, reused.stderr);
  assert.match(reused.stderr, /gantry: layer 1 of 1 \(blobs\/sha256\/\w+ in .*lying\) \(uncompressed\) does not match its digest/);
  await assert.rejects(lstat(join(c.dir, "reused.tar")));
});

test("an edit of the same size with its mtime restored is packed again", async (t) => {
  const c = await makeCase(t, { "etc/app.conf": "mode = a\n" });
  const file = join(c.dir, "root/etc/app.conf");
  await settle(c.dir);
  await c.build({}, "first.tar");
  execFileSync("touch", ["-r", file, join(c.dir, "times")]);
  await writeFile(file, "mode = b\n");
  execFileSync("touch", ["-r", join(c.dir, "times"), file]);
  const second = await c.build({}, "second.tar");
  assert.deepEqual(cachedFlags(second), [false]);
  assert.equal(fileInTopLayer(join(c.dir, "second.tar"), "etc/app.conf"), "mode = b\n");
});

test("cache prune --max-size 0 empties the blobs and the index; the next build packs again, to the same bytes", async (t) => {
  const c = await makeCase(t, { "app/hello.txt": "hello\n" });
  const spec = { fromImage: `oci:${UMOCI_LAYOUT}:base` };
  await c.build(spec, "first.tar");
  const r = await runGantry(["--json", "cache", "prune", "--max-size", "0", "--cache-dir", c.cache]);
  assert.equal(r.code, 0, r.stderr);
  const pruned = JSON.parse(r.stdout.toString("utf8")) as { removed: { blobs: number; indexEntries: number }; kept: { blobs: number } };
  assert.ok(pruned.removed.blobs >= 1 && pruned.removed.indexEntries === 1 && pruned.kept.blobs === 0, r.stdout.toString("utf8"));
  assert.deepEqual(await readdir(join(c.cache, "layers")), []);
  const second = await c.build(spec, "second.tar");
  assert.deepEqual(cachedFlags(second), [false]);
  assert.ok((await readFile(join(c.dir, "second.tar"))).equals(await readFile(join(c.dir, "first.tar"))));
});

test("deleting the cache changes no byte; --no-cache writes nothing under GANTRY_CACHE", async (t) => {
  const c = await makeCase(t, { "bin/tool": "#!/bin/sh\necho tool\n", "share/doc.txt": "doc\n" });
  await settle(c.dir);
  const spec = { fromImage: `oci:${UMOCI_LAYOUT}:app`, copyToRoot: undefined, layers: [{ copyToRoot: "./root" }, { copyToRoot: "./root/share" }] };
  await c.build(spec, "bypass.tar", "--no-cache");
  await assert.rejects(lstat(c.cache), { code: "ENOENT" }, "--no-cache made the cache directory");

  await c.build(spec, "cold.tar");
  assert.deepEqual(cachedFlags(await c.build(spec, "warm.tar")), [true, true]);
  await rm(c.cache, { recursive: true });
  assert.deepEqual(cachedFlags(await c.build(spec, "rebuilt.tar")), [false, false]);
  const bytes = await readFile(join(c.dir, "bypass.tar"));
  for (const name of ["cold.tar", "warm.tar", "rebuilt.tar"]) {
    assert.ok((await readFile(join(c.dir, name))).equals(bytes), `${name} differs from the build without cache`);
  }
});
