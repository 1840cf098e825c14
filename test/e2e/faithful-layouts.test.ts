/**
 * Files on disk are read as their peers read them. (1) An OCI layout whose image manifest
 * is indented JSON: `gantry inspect` shows the digest of those bytes, `--raw` prints them,
 * and `gantry copy` into another layout, an oci-archive and the docker-archive gantry
 * writes (which is also an OCI layout) keeps them, as `skopeo copy` does. (2) A
 * docker-archive whose manifest.json names the config by a 64-hex file name that is not
 * the hash of its bytes: docker and skopeo read the config by path and hash what they read,
 * and so must gantry (inspect, inspect --config, copy to oci:). (3) A layout with two
 * entries and a reference that names neither is an error listing both.
 *
 * Fixtures: umoci images (`init/new/insert/config`) in temp layouts; the indented manifest
 * is the umoci manifest re-written here; the docker-archive is written by `skopeo copy`,
 * unpacked, its config renamed and manifest.json edited, and packed again with GNU tar.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runGantry } from "../helpers/gantry.js";
import {
  addPrettyManifest, assertOneErrorLine, blobFile, digestLine, digestOf, gantryInspect, gantryInspectText, gantryOk,
  hexOf, readBlob, skopeoCopy, skopeoInspect, skopeoRaw, umociImage,
} from "../helpers/faithful.js";
import { fileTmpDir, tmpDir } from "../helpers/tmp.js";
import { peerTest, requireTools, run } from "../helpers/tools.js";

const shared = fileTmpDir("gantry-faithful-layouts-");

interface PrettyLayout { layout: string; compact: Buffer; pretty: Buffer; prettyDigest: string }

let made: Promise<PrettyLayout> | undefined;
/** A umoci layout with the image as umoci wrote it (ref "compact") and its manifest indented (ref "pretty"). */
function prettyLayout(): Promise<PrettyLayout> {
  requireTools("umoci", "skopeo");
  made ??= (async () => {
    const layout = join(await shared(), "pretty");
    const image = await umociImage(layout, "compact", { architecture: "amd64", marker: "pretty" });
    const pretty = await addPrettyManifest(layout, "compact", "pretty");
    return { layout, compact: await readBlob(layout, image.digest), pretty: pretty.bytes, prettyDigest: pretty.digest };
  })();
  return made;
}

peerTest("an indented manifest in a layout: inspect shows its digest and --raw prints its bytes", async () => {
  const { layout, compact, pretty, prettyDigest } = await prettyLayout();
  assert.notEqual(digestOf(compact), prettyDigest, "the fixture: the same manifest in other bytes has another digest");
  assert.equal(digestLine(await gantryInspectText(`oci:${layout}:pretty`)), prettyDigest);
  assert.equal((await gantryInspect(`oci:${layout}:pretty`)).Digest, prettyDigest);
  assert.ok((await gantryOk(["inspect", "--raw", `oci:${layout}:pretty`])).equals(pretty));
});

peerTest("gantry copy of the indented manifest keeps its digest, as skopeo copy does", async (t) => {
  const { layout, pretty, prettyDigest } = await prettyLayout();
  const work = await tmpDir(t);
  await skopeoCopy(`oci:${layout}:pretty`, `oci:${join(work, "skopeo")}:pretty`);
  assert.equal(digestOf(await skopeoRaw(`oci:${join(work, "skopeo")}:pretty`)), prettyDigest, "the peer keeps it");

  await gantryOk(["copy", `oci:${layout}:pretty`, `oci:${join(work, "gantry")}:pretty`]);
  assert.ok((await skopeoRaw(`oci:${join(work, "gantry")}:pretty`)).equals(pretty), "oci: holds the indented bytes");
  assert.ok((await readFile(blobFile(join(work, "gantry"), prettyDigest))).equals(pretty), "stored under their own digest");

  await gantryOk(["copy", `oci:${layout}:pretty`, `oci-archive:${join(work, "pretty.oci.tar")}:pretty`]);
  assert.ok((await skopeoRaw(`oci-archive:${join(work, "pretty.oci.tar")}:pretty`)).equals(pretty), "oci-archive: too");

  await gantryOk(["copy", `oci:${layout}:pretty`, join(work, "pretty.tar")]);
  assert.ok((await skopeoRaw(`oci-archive:${join(work, "pretty.tar")}`)).equals(pretty), "the docker-archive gantry writes is a layout holding them");
  assert.equal((await gantryInspect(join(work, "pretty.tar"))).Digest, prettyDigest, "and gantry reads that archive with the same digest");
});

/** A docker-archive of `ref` by skopeo, and a copy whose config file is renamed to another 64-hex name. */
async function archiveWithRenamedConfig(layoutRef: string, work: string): Promise<{ original: string; renamed: string; config: Buffer; fakeName: string }> {
  requireTools("tar");
  const original = join(work, "original.tar");
  await skopeoCopy(`oci:${layoutRef}`, `docker-archive:${original}:faithful/renamed:1`);
  const tree = join(work, "tree");
  await mkdir(tree);
  await run("tar", ["-xf", original, "-C", tree]);
  const manifestPath = join(tree, "manifest.json");
  const manifest = JSON.parse(await readFile(manifestPath, "utf8")) as [{ Config: string }];
  const config = await readFile(join(tree, manifest[0].Config));
  const fakeName = `${hexOf(digestOf("not the config's bytes"))}.json`;
  await rename(join(tree, manifest[0].Config), join(tree, fakeName));
  manifest[0].Config = fakeName;
  await rm(manifestPath, { force: true }); // skopeo writes its members read-only
  await writeFile(manifestPath, JSON.stringify(manifest));
  const renamed = join(work, "renamed.tar");
  await run("tar", ["-cf", renamed, "-C", tree, "."]);
  return { original, renamed, config, fakeName };
}

peerTest("a docker-archive whose config file name is not its hash: read by path, its digest what its bytes hash to", async (t) => {
  const { layout } = await prettyLayout();
  const work = await tmpDir(t);
  const { original, renamed, config, fakeName } = await archiveWithRenamedConfig(`${layout}:compact`, work);
  const configDigest = digestOf(config);

  const theirs = JSON.parse((await skopeoRaw(`docker-archive:${renamed}`)).toString("utf8")) as { config: { digest: string } };
  assert.equal(theirs.config.digest, configDigest, "skopeo reads the renamed archive and hashes the config it finds");

  const ours = await gantryInspect(renamed);
  assert.equal(ours.ConfigDigest, configDigest, "the config digest is the hash of the bytes");
  assert.notEqual(ours.ConfigDigest, `sha256:${fakeName.replace(/\.json$/, "")}`);
  assert.deepEqual(ours.Layers, (await skopeoInspect(`docker-archive:${renamed}`)).Layers, "the layers skopeo sees");
  const before = await gantryInspect(original);
  assert.equal(ours.Digest, before.Digest, "renaming the config file changes nothing about the image");
  assert.ok((await gantryOk(["inspect", "--config", renamed])).equals(config), "inspect --config prints the config's bytes");

  const out = join(work, "copied");
  await gantryOk(["copy", renamed, `oci:${out}:r`]);
  const copied = JSON.parse((await skopeoRaw(`oci:${out}:r`)).toString("utf8")) as { config: { digest: string } };
  assert.equal(copied.config.digest, configDigest, "the copy's manifest names the config by its hash");
  assert.ok((await readFile(blobFile(out, configDigest))).equals(config), "the copy holds the config's bytes under their hash");
  const fromCopy = await skopeoInspect(`oci:${out}:r`);
  const fromArchive = await skopeoInspect(`docker-archive:${renamed}`);
  assert.equal(fromCopy.Digest, ours.Digest, "skopeo reads the manifest gantry made for the archive");
  assert.deepEqual([fromCopy.Architecture, fromCopy.Layers], [fromArchive.Architecture, fromArchive.Layers], "skopeo sees the same image both ways");
});

peerTest("a layout with two entries and no :REF is an error naming both refs", async (t) => {
  requireTools("umoci");
  const work = await tmpDir(t);
  const layout = join(work, "two");
  await umociImage(layout, "first", { architecture: "amd64", marker: "first" });
  await umociImage(layout, "second", { architecture: "amd64", marker: "second" });
  for (const spelled of [`oci:${layout}`, layout]) {
    const line = assertOneErrorLine(await runGantry(["inspect", spelled]), `gantry inspect ${spelled}`);
    assert.match(line, /\bfirst\b/);
    assert.match(line, /\bsecond\b/);
  }
  const dest = join(work, "never");
  assertOneErrorLine(await runGantry(["copy", `oci:${layout}`, `oci:${dest}:x`]), "gantry copy of an ambiguous layout");
  assert.ok(!existsSync(dest), "nothing is written");
});
