import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { sha256 } from "../../src/model/digest.js";
import type { Image, Layer } from "../../src/model/image.js";
import { MediaType } from "../../src/model/mediatypes.js";
import { readImage, writeImage } from "../helpers/images.js";
import { writeDockerArchive as writeArchive } from "../../src/transports/docker-archive/write.js";
import { writeOciArchive, writeOciLayout } from "../../src/transports/oci/write.js";
import { listTar, tarMemberJson } from "../helpers/archive.js";
import { tmpDir } from "../helpers/tmp.js";
import { have, peerTest, requireRoot, requireTools, run, skopeo, skopeoJson } from "../helpers/tools.js";
import { fixture, isCode } from "./formats-fixtures.js";

/**
 * Writers are judged by other tools: GNU tar lists the archive, skopeo reads it as
 * docker-archive and as oci-archive and copies it, umoci unpacks the layouts,
 * oci-image-tool validates them; then gantry's own reader reads it back.
 */

const readApp = (): Promise<Image> => readImage(fixture("skopeo-app.tar"));
const readBase = (): Promise<Image> => readImage(fixture("podman-multi.tar"), { pick: "example.com/base:1" });

test("the archive is one deterministic tar: docker-archive and OCI layout at once", async (t) => {
  const dir = await tmpDir(t, "gantry-write-");
  const [app, base] = [await readApp(), await readBase()];
  const images = [{ doc: base, repoTags: ["example.com/base:1"] }, { doc: app, repoTags: ["app:latest", "docker.io/library/app:2"] }];
  const first = await writeArchive(join(dir, "a.tar"), images);
  const second = await writeArchive(join(dir, "b.tar"), images);
  const bytes = await readFile(join(dir, "a.tar"));
  assert.deepEqual(await readFile(join(dir, "b.tar")), bytes, "same images, same bytes");
  assert.equal(first.bytes, bytes.length);
  assert.deepEqual(second.digests, first.digests);
  assert.deepEqual(first.digests, [base.digest, app.digest]);

  const entries = await listTar(join(dir, "a.tar"));
  const names = entries.map((e) => e.path);
  // The layers first, in the order the images hold them (each once), so that a build knows
  // where a layer goes before it packs it; then everything else in byte order.
  const layers = [...new Set([...base.layers, ...app.layers].map((l) => `blobs/sha256/${l.digest.slice("sha256:".length)}`))];
  assert.deepEqual(names.slice(0, 2 + layers.length), ["blobs", "blobs/sha256", ...layers], "the layers lead, in image order");
  const rest = names.slice(2 + layers.length);
  assert.deepEqual(rest, [...rest].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))), "the rest byte-sorted");
  assert.deepEqual(names.slice(-4), ["index.json", "manifest.json", "oci-layout", "repositories"]);
  for (const e of entries) {
    assert.equal(e.mtime, 0, e.path);
    assert.equal(e.uid, 0, e.path);
    assert.equal(e.gid, 0, e.path);
    assert.equal(e.mode, e.type === "d" ? 0o755 : 0o644, e.path);
  }
  // Each blob once: the shared first layer and app's own, two configs, two manifests.
  const blobs = names.filter((n) => n.startsWith("blobs/sha256/"));
  assert.equal(new Set(blobs).size, blobs.length);
  assert.equal(blobs.length, 2 + 2 + 2);

  const manifest = await tarMemberJson<{ Config: string; RepoTags: string[]; Layers: string[] }[]>(join(dir, "a.tar"), "manifest.json");
  assert.deepEqual(manifest.map((m) => m.RepoTags), [["example.com/base:1"], ["app:latest", "app:2"]]);
  assert.equal(manifest[1]!.Config, `blobs/sha256/${app.configDigest.slice(7)}`);
  assert.deepEqual(manifest[1]!.Layers, app.layers.map((l) => `blobs/sha256/${l.digest.slice(7)}`));
  const repos = await tarMemberJson<Record<string, Record<string, string>>>(join(dir, "a.tar"), "repositories");
  assert.deepEqual(repos, {
    app: { 2: app.layers[1]!.digest.slice(7), latest: app.layers[1]!.digest.slice(7) },
    "example.com/base": { 1: base.layers[0]!.digest.slice(7) },
  });
  const index = await tarMemberJson<{ manifests: { digest: string; annotations: Record<string, string> }[] }>(join(dir, "a.tar"), "index.json");
  assert.deepEqual(index.manifests.map((m) => [m.annotations["io.containerd.image.name"], m.annotations["org.opencontainers.image.ref.name"]]), [
    ["example.com/base:1", "1"], ["docker.io/library/app:latest", "latest"], ["docker.io/library/app:2", "2"],
  ]);

  // Read back by gantry, both ways.
  const back = await readImage(`docker-archive:${join(dir, "a.tar")}:app:2`);
  assert.equal(back.configDigest, app.configDigest);
  assert.deepEqual(back.layers.map((l) => l.digest), app.layers.map((l) => l.digest));
  const backOci = await readImage(`oci-archive:${join(dir, "a.tar")}`, { pick: "app:latest" });
  assert.equal(backOci.configDigest, app.configDigest);
});

peerTest("skopeo reads the archive as docker-archive and as oci-archive, and copies it", async (t) => {
  requireTools("skopeo");
  const dir = await tmpDir(t, "gantry-write-");
  const out = join(dir, "out.tar");
  const app = await readApp();
  const { digests } = await writeArchive(out, [{ doc: app, repoTags: ["app:latest"] }]);

  const asOci = await skopeoJson<{ Digest: string; Layers: string[] }>("inspect", `oci-archive:${out}`);
  assert.equal(asOci.Digest, digests[0]);
  assert.deepEqual(Buffer.from(await skopeo("inspect", "--raw", `oci-archive:${out}`)), app.manifestBytes);
  const asDocker = await skopeoJson<{ Layers: string[] }>("inspect", `docker-archive:${out}`);
  assert.deepEqual(asDocker.Layers, app.layers.map((l) => l.digest));
  const rawConfig = (await run("skopeo", ["inspect", "--config", "--raw", `docker-archive:${out}`])).stdout;
  assert.equal(sha256(rawConfig), app.configDigest);

  // skopeo copy reads and checks every blob. From docker-archive it converts the config
  // for OCI (so only the layers stay the same); from oci-archive nothing changes.
  await skopeo("copy", "--quiet", `docker-archive:${out}`, `oci:${join(dir, "copy")}:t`);
  const converted = await readImage(`oci:${join(dir, "copy")}:t`);
  assert.deepEqual(converted.config.rootfs.diff_ids, app.config.rootfs.diff_ids);
  await skopeo("copy", "--quiet", `oci-archive:${out}`, `oci:${join(dir, "copy")}:u`);
  const copied = await readImage(`oci:${join(dir, "copy")}:u`);
  assert.equal(copied.configDigest, app.configDigest);
});

peerTest("images from every reader are written like any other (legacy, nix 2017, zstd)", async (t) => {
  requireTools("skopeo");
  const dir = await tmpDir(t, "gantry-write-");
  const sources: [string, string][] = [["legacy.tar", "legacy:1"], ["nix2017.tar", "nix:1"], ["oci-multiarch.tar", "multi:1"]];
  for (const [name, tag] of sources) {
    const image = await readImage(fixture(name), { firstOfMany: true });
    const out = join(dir, `${name}.out.tar`);
    await writeArchive(out, [{ doc: image, repoTags: [tag] }]);
    const rawConfig = (await run("skopeo", ["inspect", "--config", "--raw", `docker-archive:${out}`])).stdout;
    assert.deepEqual(rawConfig, image.configBytes, name);
    // skopeo copy reads every blob and checks it against the manifest.
    await skopeo("copy", "--quiet", `oci-archive:${out}`, `oci:${join(dir, `${name}.layout`)}:t`);
  }
  // zstd layers are carried as they are (skopeo 1.9 reads, but will not write, zstd into a docker-archive).
  const zstd = await readImage(fixture("zstd-layer.tar"));
  const zout = join(dir, "zstd.out.tar");
  await writeArchive(zout, [{ doc: zstd, repoTags: ["z:1"] }]);
  const raw = JSON.parse(await skopeo("inspect", "--raw", `oci-archive:${zout}`)) as { layers: { mediaType: string }[] };
  assert.deepEqual(raw.layers.map((l) => l.mediaType), [MediaType.ociLayer, MediaType.ociLayerZstd]);
  assert.equal((await readImage(zout)).layers[1]!.compression, "zstd");
});

/** A layer whose stored bytes are not what it claims: it yields `actual` but declares `claimedSize`. */
function lyingLayer(actual: Buffer, claimedSize: number): Layer {
  const digest = sha256(actual);
  return {
    digest, diffId: digest, size: claimedSize, compression: "none",
    mediaType: MediaType.ociLayer, descriptor: { mediaType: MediaType.ociLayer, digest, size: claimedSize },
    open: async () => Readable.from([actual]),
    openUncompressed: async () => Readable.from([actual]),
  };
}

test("a layer that yields more or fewer bytes than its size fails the write and leaves DEST as it was", async (t) => {
  const dir = await tmpDir(t, "gantry-write-");
  const app = await readApp();
  const dest = join(dir, "keep.tar");
  await writeFile(dest, "previous contents");
  for (const claimed of [100, 5000]) {
    const bad: Image = { ...app, layers: [app.layers[0]!, lyingLayer(Buffer.alloc(1024, 1), claimed)] };
    await assert.rejects(writeArchive(dest, [{ doc: bad, repoTags: ["bad:1"] }]), isCode("DIGEST_MISMATCH", String(claimed)));
    assert.equal(await readFile(dest, "utf8"), "previous contents");
  }
  // The layers gantry reads verify themselves: a changed byte fails the write too.
  const flipped = Buffer.from(await readFile(fixture("skopeo-app.tar")));
  const at = flipped.indexOf(Buffer.from("two.txt"));
  flipped[at] = flipped[at]! ^ 1;
  await writeFile(join(dir, "flipped.tar"), flipped);
  const damaged = await readImage(join(dir, "flipped.tar"));
  await assert.rejects(writeArchive(dest, [{ doc: damaged, repoTags: ["d:1"] }]), isCode("DIGEST_MISMATCH", "layer 2 of 2"));
  await assert.rejects(writeOciLayout(join(dir, "layout"), [{ doc: damaged, repoTags: [] }]), isCode("DIGEST_MISMATCH"));
  assert.equal(await readFile(dest, "utf8"), "previous contents");
  assert.deepEqual((await readdir(dir)).sort(), ["flipped.tar", "keep.tar"], "no temporary files or half layouts left");
});

test("`-` streams the same archive to the output stream", async (t) => {
  const dir = await tmpDir(t, "gantry-write-");
  const app = await readApp();
  await writeArchive(join(dir, "file.tar"), [{ doc: app, repoTags: ["app:1"] }]);
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on("data", (c: Buffer) => chunks.push(c));
  const result = await writeImage("-", [{ doc: app, repoTags: ["app:1"] }], { output: sink });
  assert.deepEqual(Buffer.concat(chunks), await readFile(join(dir, "file.tar")));
  assert.equal(result.bytes, Buffer.concat(chunks).length);
});

test("writeImage dispatches on the reference; a name in it tags the image", async (t) => {
  const dir = await tmpDir(t, "gantry-write-");
  const app = await readApp();
  await writeImage(`docker-archive:${join(dir, "named.tar")}:renamed:7`, [{ doc: app, repoTags: ["app:1"] }]);
  const manifest = await tarMemberJson<{ RepoTags: string[] }[]>(join(dir, "named.tar"), "manifest.json");
  assert.deepEqual(manifest[0]!.RepoTags, ["renamed:7"]);
  await writeImage(`oci:${join(dir, "layout")}:r1`, [{ doc: app, repoTags: [] }]);
  assert.equal((await readImage(`oci:${join(dir, "layout")}:r1`)).configDigest, app.configDigest);
  await writeImage(`oci-archive:${join(dir, "o.tar")}:r2`, [{ doc: app, repoTags: [] }]);
  assert.equal((await readImage(`oci-archive:${join(dir, "o.tar")}:r2`)).configDigest, app.configDigest);
  await assert.rejects(writeImage(`docker-archive:${join(dir, "x.tar")}:one:1`, [{ doc: app, repoTags: [] }, { doc: app, repoTags: [] }]), isCode("REFERENCE_INVALID", "one:1"));
  await assert.rejects(writeArchive(join(dir, "y.tar"), [{ doc: app, repoTags: ["a:1"] }, { doc: await readBase(), repoTags: ["a:1"] }]), isCode("REFERENCE_INVALID", "a:1"));
  await assert.rejects(writeArchive(join(dir, "z.tar"), [{ doc: app, repoTags: ["Bad Name"] }]), isCode("REFERENCE_INVALID", "Bad Name"));
});

peerTest("an OCI layout directory validates, unpacks with umoci, and is added to like skopeo does", async (t) => {
  requireTools("umoci");
  requireRoot();
  const dir = await tmpDir(t, "gantry-write-");
  const layout = join(dir, "layout");
  const [app, base] = [await readApp(), await readBase()];
  await writeOciLayout(layout, [{ doc: app, repoTags: [] }], { refName: "app" });
  // Adding keeps the first image; writing a ref name again replaces its entry.
  await writeOciLayout(layout, [{ doc: base, repoTags: [] }], { refName: "base" });
  await writeOciLayout(layout, [{ doc: base, repoTags: [] }], { refName: "base" });
  const index = JSON.parse(await readFile(join(layout, "index.json"), "utf8")) as { manifests: { annotations: Record<string, string> }[] };
  assert.deepEqual(index.manifests.map((m) => m.annotations["org.opencontainers.image.ref.name"]), ["app", "base"]);
  assert.equal((await readImage(`oci:${layout}:app`)).configDigest, app.configDigest);

  if (have("oci-image-tool")) {
    for (const ref of ["app", "base"]) await run("oci-image-tool", ["validate", "--type", "image", "--ref", `name=${ref}`, layout]);
  }
  await run("umoci", ["unpack", "--image", `${layout}:app`, join(dir, "bundle")]);
  const rootfs = (await readdir(join(dir, "bundle", "rootfs"))).sort();
  assert.deepEqual(rootfs, ["etc", "two.txt"], "the second layer's whiteout removed hello.txt");

  // Docker-style names when no ref name is given; the OCI archive is the same layout in a tar.
  await writeOciArchive(join(dir, "o.tar"), [{ doc: app, repoTags: ["app:2"] }]);
  const viaSkopeo = have("skopeo") ? await skopeoJson<{ Digest: string }>("inspect", `oci-archive:${join(dir, "o.tar")}:2`) : undefined;
  if (viaSkopeo) assert.equal(viaSkopeo.Digest, app.digest);
  await assert.rejects(writeOciLayout(join(dir, "bundle"), [{ doc: app, repoTags: [] }]), isCode("FORMAT_INVALID", "not an OCI layout"));
});
