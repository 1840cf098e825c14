import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sha256, type Digest } from "../../src/model/digest.js";
import type { Image } from "../../src/model/image.js";
import { listImages, readImage } from "../helpers/images.js";
import { tarMember, tarMemberJson } from "../helpers/archive.js";
import { tmpDir } from "../helpers/tmp.js";
import { run } from "../helpers/tools.js";
import { drain, fixture, isCode } from "./formats-fixtures.js";

/**
 * Expectations come from the fixtures as GNU tar and JSON.parse see them, never
 * from gantry's reader: the config digest is the sha256 of the config file, each
 * layer digest the sha256 of the stored file, each diff_id the config's.
 */

interface DockerEntry { Config: string; RepoTags: string[] | null; Layers: string[] }

/** What GNU tar extracts for the image tagged `repoTag` (the first image when absent); symlinks followed by the file system. */
async function expectedFromDockerArchive(archive: string, repoTag?: string): Promise<{ configDigest: Digest; diffIds: Digest[]; layerDigests: Digest[] }> {
  const dir = await mkdtemp(join(tmpdir(), "gantry-expect-"));
  try {
    await run("tar", ["-C", dir, "-xf", archive]);
    const entries = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as DockerEntry[];
    const entry = repoTag === undefined ? entries[0]! : entries.find((e) => e.RepoTags?.includes(repoTag))!;
    const configBytes = await readFile(join(dir, entry.Config));
    const config = JSON.parse(configBytes.toString()) as { rootfs: { diff_ids: Digest[] } };
    const layerDigests: Digest[] = [];
    for (const name of entry.Layers) layerDigests.push(sha256(await readFile(join(dir, name))));
    return { configDigest: sha256(configBytes), diffIds: config.rootfs.diff_ids, layerDigests };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Reads every layer both ways, so their verification runs, and returns the uncompressed digests. */
async function readAllLayers(image: Image): Promise<Digest[]> {
  const out: Digest[] = [];
  for (const layer of image.layers) {
    assert.equal((await drain(await layer.open())).digest, layer.digest);
    out.push((await drain(await layer.openUncompressed())).digest);
  }
  return out;
}

test("every docker-archive layer naming reads to the same image", async () => {
  const app = await expectedFromDockerArchive(fixture("skopeo-app.tar"));
  const cases: [string, string | undefined, string[]][] = [
    ["skopeo-app.tar", undefined, ["none", "none"]],           // HEX.tar + ID/layer.tar symlinks
    ["docker20-multi.tar", "app:latest", ["none", "none"]],    // HEX/layer.tar, HEX.json
    ["docker25-blobs.tar", undefined, ["none", "none"]],       // blobs/sha256/HEX
    ["nix2017.tar", undefined, ["gzip", "gzip"]],              // sha256:HEX gzip files
    ["zstd-layer.tar", undefined, ["none", "zstd"]],           // a zstd ID/layer.tar
  ];
  for (const [name, pick, compressions] of cases) {
    const archive = fixture(name);
    const image = await readImage(`docker-archive:${archive}`, pick === undefined ? {} : { pick });
    const want = await expectedFromDockerArchive(archive, pick);
    assert.equal(image.configDigest, app.configDigest, name);
    assert.equal(sha256(image.configBytes), image.configDigest, name);
    assert.deepEqual(image.config.rootfs.diff_ids, app.diffIds, name);
    assert.deepEqual(image.layers.map((l) => l.diffId), app.diffIds, name);
    assert.deepEqual(image.layers.map((l) => l.digest), want.layerDigests, name);
    assert.deepEqual(image.layers.map((l) => l.compression), compressions, name);
    assert.deepEqual(await readAllLayers(image), app.diffIds, name);
  }
});

test("a multi-image archive is picked by NAME:TAG, prefixes and a missing tag forgiven", async () => {
  const archive = fixture("podman-multi.tar");
  const base = await expectedFromDockerArchive(archive, "example.com/base:1");
  const app = await expectedFromDockerArchive(archive, "docker.io/library/app:2");
  const picks: [string, Digest, number][] = [
    ["example.com/base:1", base.configDigest, 1],
    ["app:2", app.configDigest, 2],
    ["app", app.configDigest, 2],
    ["docker.io/library/app:latest", app.configDigest, 2],
    ["localhost/app:2", app.configDigest, 2],
  ];
  for (const [pick, configDigest, layers] of picks) {
    const image = await readImage(archive, { pick });
    assert.equal(image.configDigest, configDigest, pick);
    assert.equal(image.layers.length, layers, pick);
  }
  // The name in the reference picks too; docker save's familiar RepoTags match full names.
  assert.equal((await readImage(`docker-archive:${archive}:app:2`)).configDigest, app.configDigest);
  const d20 = await readImage(fixture("docker20-multi.tar"), { pick: "docker.io/library/app:2" });
  assert.deepEqual(d20.repoTags, ["app:latest", "app:2"]);
  // No name: skopeo refuses to guess, and so do we, listing what there is; a build's base takes the first, as nixpkgs does.
  await assert.rejects(readImage(archive), isCode("REFERENCE_INVALID", "2 images", "example.com/base:1", "docker.io/library/app:2"));
  const [b, a] = [await readImage(archive, { firstOfMany: true }), await readImage(archive, { pick: "app" })];
  assert.equal(b.configDigest, base.configDigest);
  // Shared layers are the same blob in both images.
  assert.equal(b.layers[0]!.digest, a.layers[0]!.digest);

  const listed = await listImages(archive);
  assert.deepEqual(listed.map((s) => s.digest), [b.digest, (await readImage(archive, { pick: "app:2" })).digest]);
  assert.deepEqual(listed[1]!.repoTags, ["docker.io/library/app:latest", "docker.io/library/app:2"]);
});

test("a name the archive does not hold is IMAGE_NOT_FOUND listing what it holds", async () => {
  await assert.rejects(readImage(fixture("podman-multi.tar"), { pick: "app:3" }),
    isCode("IMAGE_NOT_FOUND", "app:3", "example.com/base:1", "docker.io/library/app:2", "podman-multi.tar"));
  await assert.rejects(readImage(`docker-archive:${fixture("legacy.tar")}:nope:1`),
    isCode("IMAGE_NOT_FOUND", "nope:1", "app:latest", "example.com/base:1"));
  await assert.rejects(readImage(`oci:${fixture("oci-umoci")}:missing`), isCode("IMAGE_NOT_FOUND", "missing", "base", "app"));
});

test("the legacy format (repositories + ID/json) becomes an ordinary image", async () => {
  const d20 = await expectedFromDockerArchive(fixture("docker20-multi.tar"), "app:latest");
  const image = await readImage(fixture("legacy.tar"), { pick: "app:latest" });
  // Root-first order along the parent chain: the same layers docker 20.10 listed for app.
  assert.deepEqual(image.layers.map((l) => l.diffId), d20.diffIds);
  assert.deepEqual(image.config.rootfs.diff_ids, d20.diffIds);
  assert.equal(image.config.architecture, "amd64");
  assert.equal(image.config.os, "linux");
  assert.deepEqual(image.config.config?.Cmd, ["/bin/hello"]);
  assert.deepEqual(image.config.config?.Env, ["FOO=bar"]);
  assert.equal(image.config.history?.length, 2);
  assert.equal(image.configDigest, sha256(image.configBytes));
  assert.deepEqual(JSON.parse(image.configBytes.toString()), image.config);
  assert.deepEqual(await readAllLayers(image), d20.diffIds);
  // The synthesized config is stable: reading again gives the same digest.
  assert.equal((await readImage(fixture("legacy.tar"), { pick: "app:latest" })).configDigest, image.configDigest);
  // base:1's only layer is a symlink to another ID's layer.tar.
  const base = await readImage(fixture("legacy.tar"), { pick: "example.com/base:1" });
  assert.deepEqual(base.layers.map((l) => l.diffId), [d20.diffIds[0]]);
  assert.equal((await listImages(fixture("legacy.tar"))).length, 2);
});

test("OCI layouts and archives read by ref name and platform, blobs as the manifest states", async () => {
  const layout = fixture("oci-umoci");
  const index = JSON.parse(await readFile(join(layout, "index.json"), "utf8")) as { manifests: { digest: string; annotations: Record<string, string> }[] };
  const appDesc = index.manifests.find((m) => m.annotations["org.opencontainers.image.ref.name"] === "app")!;
  const manifest = JSON.parse(await readFile(join(layout, "blobs", "sha256", appDesc.digest.slice(7)), "utf8")) as { config: { digest: string }; layers: { digest: string }[] };
  const image = await readImage(`oci:${layout}:app`);
  assert.equal(image.configDigest, manifest.config.digest);
  assert.deepEqual(image.layers.map((l) => l.digest), manifest.layers.map((l) => l.digest));
  assert.deepEqual(image.layers.map((l) => l.compression), ["gzip", "gzip"]);
  const app = await expectedFromDockerArchive(fixture("skopeo-app.tar"));
  assert.deepEqual(await readAllLayers(image), app.diffIds);
  await assert.rejects(readImage(layout), isCode("REFERENCE_INVALID", "2 images", "ref base", "ref app"), "two entries and no ref: skopeo asks which");
  assert.equal((await readImage(layout, { pick: "app" })).configDigest, manifest.config.digest, "a pick may be a ref name");

  const multi = fixture("oci-multiarch.tar");
  const arm = await readImage(multi, { platform: "linux/arm64" });
  assert.equal(arm.config.architecture, "arm64");
  assert.equal(arm.layers.length, 2);
  const amd = await readImage(`oci-archive:${multi}:multi`, { platform: "linux/amd64" });
  assert.equal(amd.config.architecture, "amd64");
  assert.equal(amd.layers.length, 1);
  await assert.rejects(readImage(multi, { platform: "linux/s390x" }), isCode("IMAGE_NOT_FOUND", "linux/s390x", "linux/amd64", "linux/arm64"));

  // Docker 25's dual archive read as oci-archive: names from the containerd annotation.
  const dual = await readImage(`oci-archive:${fixture("docker25-blobs.tar")}`);
  assert.deepEqual(dual.repoTags, ["docker.io/library/app:latest"]);
  assert.equal(dual.configDigest, app.configDigest);
});

test("an unpacked docker-archive directory reads like the tar, symlinks included", async (t) => {
  const dir = await tmpDir(t, "gantry-read-");
  await run("tar", ["-C", dir, "-xf", fixture("docker20-multi.tar")]);
  const fromDir = await readImage(dir, { pick: "example.com/base:1" });
  const fromTar = await readImage(fixture("docker20-multi.tar"), { pick: "example.com/base:1" });
  assert.equal(fromDir.configDigest, fromTar.configDigest);
  assert.deepEqual(fromDir.layers.map((l) => l.digest), fromTar.layers.map((l) => l.digest));
  await readAllLayers(fromDir);
});

test("a layer file named by a digest it does not have is read by its bytes, as docker load and skopeo read it", async (t) => {
  const dir = await tmpDir(t, "gantry-read-");
  await run("tar", ["-C", dir, "-xf", fixture("nix2017.tar")]);
  const entries = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as DockerEntry[];
  const original = entries[0]!.Layers[0]!;
  const misnamed = `sha256:${"e".repeat(64)}`;
  await run("mv", [join(dir, original), join(dir, misnamed)]);
  entries[0]!.Layers[0] = misnamed;
  await writeFile(join(dir, "manifest.json"), JSON.stringify(entries));
  const image = await readImage(dir);
  assert.equal(image.layers[0]!.digest, sha256(await readFile(join(dir, misnamed))));
  assert.deepEqual(await readAllLayers(image), image.config.rootfs.diff_ids);
});

/** A copy of a fixture with the first occurrence of `marker` changed by one byte. */
async function withFlippedByte(t: Parameters<typeof tmpDir>[0], name: string, marker: Buffer): Promise<string> {
  const bytes = Buffer.from(await readFile(fixture(name)));
  const at = bytes.indexOf(marker);
  assert.ok(at >= 0, `marker not found in ${name}`);
  bytes[at] = bytes[at]! ^ 0x01;
  const out = join(await tmpDir(t, "gantry-read-"), name);
  await writeFile(out, bytes);
  return out;
}

test("a layer with one flipped byte fails with DIGEST_MISMATCH naming the blob", async (t) => {
  // Uncompressed: the second layer holds two.txt.
  const skopeo = await withFlippedByte(t, "skopeo-app.tar", Buffer.from("two.txt"));
  const image = await readImage(skopeo);
  await assert.rejects(drain(await image.layers[1]!.open()), isCode("DIGEST_MISMATCH", "layer 2 of 2", ".tar in", skopeo));
  await assert.rejects(drain(await image.layers[1]!.openUncompressed()), isCode("DIGEST_MISMATCH", "layer 2 of 2"));
  await drain(await image.layers[0]!.open());

  // gzip, named by its digest: the name is no statement; the layer is what its bytes are, and
  // the damage shows when it is decompressed, naming the layer.
  const nixBytes = await readFile(fixture("nix2017.tar"));
  const nixManifest = (await tarMemberJson<DockerEntry[]>(fixture("nix2017.tar"), "manifest.json"))[0]!;
  const gz = await tarMember(fixture("nix2017.tar"), nixManifest.Layers[0]!);
  assert.ok(nixBytes.includes(gz));
  const nix = await withFlippedByte(t, "nix2017.tar", gz.subarray(20, 40));
  const nixImage = await readImage(nix);
  await assert.rejects(drain(await nixImage.layers[0]!.openUncompressed()), isCode("FORMAT_INVALID", "layer 1 of 2", nixManifest.Layers[0]!, "corrupt"));

  // OCI: a gzip blob whose digest the manifest states.
  const dir = await tmpDir(t, "gantry-read-");
  await run("cp", ["-r", fixture("oci-umoci"), join(dir, "layout")]);
  const ociImage = await readImage(`oci:${join(dir, "layout")}:base`);
  const blob = join(dir, "layout", "blobs", "sha256", ociImage.layers[0]!.digest.slice(7));
  const blobBytes = Buffer.from(await readFile(blob));
  blobBytes[blobBytes.length - 5] = blobBytes[blobBytes.length - 5]! ^ 0x01;
  await writeFile(blob, blobBytes);
  await assert.rejects(drain(await ociImage.layers[0]!.open()), isCode("DIGEST_MISMATCH", ociImage.layers[0]!.digest.slice(7)));
});

test("a damaged config, manifest or archive is refused naming it", async (t) => {
  // An OCI manifest blob that no longer matches its descriptor.
  const dir = await tmpDir(t, "gantry-read-");
  const layout = join(dir, "layout");
  await run("cp", ["-r", fixture("oci-umoci"), layout]);
  const index = JSON.parse(await readFile(join(layout, "index.json"), "utf8")) as { manifests: { digest: string }[] };
  const manifestPath = join(layout, "blobs", "sha256", index.manifests[0]!.digest.slice(7));
  await writeFile(manifestPath, (await readFile(manifestPath, "utf8")).replace("+gzip", "+gziP"));
  await assert.rejects(readImage(`oci:${layout}:base`), isCode("DIGEST_MISMATCH", index.manifests[0]!.digest.slice(7)));

  // Half an archive.
  const whole = await readFile(fixture("podman-multi.tar"));
  const half = join(dir, "half.tar");
  await writeFile(half, whole.subarray(0, Math.floor(whole.length / 2)));
  await assert.rejects(readImage(`docker-archive:${half}`), isCode("FORMAT_INVALID", half, "truncated"));

  // manifest.json that lists one layer fewer than the config's diff_ids.
  const unpacked = join(dir, "unpacked");
  await run("mkdir", [unpacked]);
  await run("tar", ["-C", unpacked, "-xf", fixture("skopeo-app.tar")]);
  const entries = JSON.parse(await readFile(join(unpacked, "manifest.json"), "utf8")) as DockerEntry[];
  entries[0]!.Layers.pop();
  await writeFile(join(unpacked, "manifest.json"), JSON.stringify(entries));
  const short = join(dir, "short.tar");
  await run("tar", ["-C", unpacked, "-cf", short, "."]);
  await assert.rejects(readImage(short), isCode("FORMAT_INVALID", "manifest.json in", "1 layers", "has 2"));

  // A manifest.json that is not JSON; an entry it names that is missing.
  await writeFile(join(unpacked, "manifest.json"), "[{");
  await assert.rejects(readImage(unpacked), isCode("FORMAT_INVALID", `manifest.json in ${unpacked}`, "not valid JSON"));
  entries[0]!.Layers.push("nowhere.tar");
  await writeFile(join(unpacked, "manifest.json"), JSON.stringify(entries));
  await assert.rejects(readImage(unpacked), isCode("FORMAT_INVALID", "nowhere.tar"));

  // An OCI archive given as docker-archive says what it is.
  await assert.rejects(readImage(`docker-archive:${fixture("oci-multiarch.tar")}`), isCode("FORMAT_INVALID", "oci-archive:"));
});

test("reading honours an aborted signal", async () => {
  const controller = new AbortController();
  controller.abort();
  // The zstd layer is not named by digest, so reading it means hashing it: that is where the abort lands.
  await assert.rejects(readImage(fixture("zstd-layer.tar"), { signal: controller.signal }), isCode("ABORTED"));
});
