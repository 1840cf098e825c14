/**
 * A registry image is what the registry serves, byte for byte. skopeo pushes an image
 * as Docker v2s2 and as OCI to a loopback distribution registry; `gantry inspect` must show
 * the registry's Docker-Content-Digest, `gantry inspect --raw` must print the bytes skopeo
 * reads, `gantry pull REPO@DIGEST` must work, and `gantry copy docker://A docker://B` must
 * keep the digest, for a v2s2 image, an OCI image, a manifest PUT in indented JSON, and
 * (with --all) an index PUT in indented JSON.
 *
 * Fixtures: two one-layer images made by umoci (`init`, `new`, `insert`, `config`; amd64 and
 * arm64) in a temp layout; the indented manifest and index are written here and PUT with
 * fetch. Each check is one a writer that re-serialises would fail: skopeo's v2s2 manifest
 * orders `size` before `digest` (gantry's own puts `digest` first), umoci's manifests have
 * no `mediaType` (gantry's have one), and indented JSON is nobody's serialisation.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  digestLine, digestOf, gantryInspect, gantryInspectText, gantryOk, handIndex, prettyJson, putManifest,
  registryDigest, sharedRegistry, skopeoCopy, skopeoInspect, skopeoRaw, umociImage, OCI_INDEX, type Descriptor,
} from "../helpers/faithful.js";
import { fileTmpDir, tmpDir } from "../helpers/tmp.js";
import { peerTest, requireTools } from "../helpers/tools.js";

const registry = sharedRegistry();
const shared = fileTmpDir("gantry-faithful-registry-");

const DOCKER_V2S2 = "application/vnd.docker.distribution.manifest.v2+json";
const NO_TLS = "--tls-verify=false";

interface Fixture { layout: string; amd64: Descriptor; arm64: Descriptor }

let fixture: Promise<Fixture> | undefined;
/** The umoci layout both images live in (made once per file). */
function images(): Promise<Fixture> {
  requireTools("umoci", "skopeo", "docker-registry");
  fixture ??= (async () => {
    const layout = join(await shared(), "layout");
    const amd64 = await umociImage(layout, "amd64", { architecture: "amd64", marker: "registry amd64" });
    const arm64 = await umociImage(layout, "arm64", { architecture: "arm64", marker: "registry arm64" });
    return { layout, amd64, arm64 };
  })();
  return fixture;
}

/** `skopeo copy --format FORMAT oci:LAYOUT:REF docker://HOST/REPO:TAG`; returns the digest skopeo reports. */
async function skopeoPush(layoutRef: string, dest: string, format: "v2s2" | "oci", work: string): Promise<string> {
  const digestFile = join(work, "pushed.digest");
  await skopeoCopy("--dest-tls-verify=false", "--format", format, "--digestfile", digestFile, `oci:${layoutRef}`, dest);
  return (await readFile(digestFile, "utf8")).trim();
}

const hostArchitecture = ({ x64: "amd64", arm64: "arm64" } as Record<string, string>)[process.arch];

/** inspect (text and --json) shows the registry's digest; --raw prints what skopeo reads, which hashes to it. */
async function assertInspectKeeps(ref: string, expected: string, mediaType: string): Promise<Buffer> {
  assert.equal(digestLine(await gantryInspectText(ref)), expected, `gantry inspect ${ref}: the Digest line`);
  const json = await gantryInspect(ref);
  assert.equal(json.Digest, expected, `gantry --json inspect ${ref}`);
  assert.equal(json.MediaType, mediaType);
  const raw = await gantryOk(["inspect", "--raw", ref]);
  assert.equal(digestOf(raw), expected, "the --raw bytes hash to the registry's digest");
  assert.ok(raw.equals(await skopeoRaw(NO_TLS, ref)), "the --raw bytes are skopeo's, byte for byte");
  return raw;
}

function configDigestIn(manifest: Buffer): string {
  return (JSON.parse(manifest.toString("utf8")) as { config: { digest: string } }).config.digest;
}

/** `gantry pull REPO@DIGEST -o FILE.tar`: the archive holds the registry's manifest, and skopeo reads it both ways. */
async function assertPullByDigest(host: string, repo: string, digest: string, work: string): Promise<void> {
  const out = join(work, "pulled.tar");
  const pulled = JSON.parse((await gantryOk(["--json", "pull", `docker://${host}/${repo}@${digest}`, "-o", out])).toString("utf8")) as { manifestDigest: string };
  assert.equal(pulled.manifestDigest, digest);
  assert.equal((await skopeoInspect(`oci-archive:${out}`)).Digest, digest, "the archive's OCI layout holds the registry's manifest");
  assert.equal((await gantryInspect(out)).Digest, digest, "gantry reads back the registry's manifest");
  const configInArchive = configDigestIn(await skopeoRaw(`docker-archive:${out}`));
  const configInRegistry = configDigestIn(await skopeoRaw(NO_TLS, `docker://${host}/${repo}@${digest}`));
  assert.equal(configInArchive, configInRegistry, "skopeo reads the same config from the archive as a docker-archive");
}

peerTest("skopeo's v2s2 push: inspect shows the registry's digest, --raw is skopeo's bytes, pull @digest works", async (t) => {
  const { layout } = await images();
  const { host } = await registry();
  const work = await tmpDir(t);
  const ref = `docker://${host}/skopeo/v2s2:1`;
  const pushed = await skopeoPush(`${layout}:amd64`, ref, "v2s2", work);
  assert.equal(await registryDigest(host, "skopeo/v2s2", "1"), pushed, "skopeo's --digestfile is the registry's digest");

  await assertInspectKeeps(ref, pushed, DOCKER_V2S2);
  await assertPullByDigest(host, "skopeo/v2s2", pushed, work);

  const remade = JSON.parse((await gantryOk(["--json", "copy", "--format", "v2s2", `oci:${layout}:amd64`, `dir:${join(work, "remade")}`])).toString("utf8")) as { manifestDigest: string };
  assert.notEqual(remade.manifestDigest, pushed, "the fixture: gantry's own v2s2 manifest of this image has other bytes than skopeo's");
});

peerTest("skopeo's OCI push: umoci's manifest is served as it is, and gantry shows, prints and pulls exactly that", async (t) => {
  const { layout, amd64 } = await images();
  const { host } = await registry();
  const work = await tmpDir(t);
  const ref = `docker://${host}/skopeo/oci:1`;
  const pushed = await skopeoPush(`${layout}:amd64`, ref, "oci", work);
  assert.equal(pushed, amd64.digest, "skopeo kept umoci's manifest bytes");
  assert.equal(await registryDigest(host, "skopeo/oci", "1"), pushed);
  const raw = await assertInspectKeeps(ref, pushed, "application/vnd.oci.image.manifest.v1+json");
  assert.equal((JSON.parse(raw.toString("utf8")) as { mediaType?: string }).mediaType, undefined,
    "the fixture: umoci's manifest names no mediaType, which every manifest gantry makes does");
  await assertPullByDigest(host, "skopeo/oci", pushed, work);
});

peerTest("a manifest PUT as indented JSON: gantry shows, prints, pulls and copies those bytes", async (t) => {
  const { layout } = await images();
  const { host } = await registry();
  const work = await tmpDir(t);
  await skopeoPush(`${layout}:amd64`, `docker://${host}/hand/pretty:blobs`, "v2s2", work);
  const compact = await skopeoRaw(NO_TLS, `docker://${host}/hand/pretty:blobs`);
  const pretty = prettyJson(JSON.parse(compact.toString("utf8")));
  const stored = await putManifest(host, "hand/pretty", "1", pretty, DOCKER_V2S2);
  assert.equal(stored, digestOf(pretty), "the registry stores the bytes it was given");

  await assertInspectKeeps(`docker://${host}/hand/pretty:1`, stored, DOCKER_V2S2);
  await assertPullByDigest(host, "hand/pretty", stored, work);
  await gantryOk(["copy", `docker://${host}/hand/pretty:1`, `docker://${host}/hand/pretty-copy:1`]);
  assert.equal(await registryDigest(host, "hand/pretty-copy", "1"), stored, "the copy keeps the indented bytes");
  // Into dir: (skopeo 1.9 finds no Docker-typed manifest in an OCI layout's index.json, so oci: would not do).
  await gantryOk(["pull", `docker://${host}/hand/pretty@${stored}`, "-o", `dir:${join(work, "pulled-dir")}`]);
  assert.ok((await skopeoRaw(`dir:${join(work, "pulled-dir")}`)).equals(pretty), "pulled into dir:, still the indented bytes");
});

peerTest("gantry copy docker://A docker://B keeps the digest of a v2s2 image and of an OCI image", async (t) => {
  const { layout } = await images();
  const { host } = await registry();
  const work = await tmpDir(t);
  for (const format of ["v2s2", "oci"] as const) {
    const source = await skopeoPush(`${layout}:amd64`, `docker://${host}/copy/${format}-src:1`, format, work);
    await gantryOk(["copy", `docker://${host}/copy/${format}-src:1`, `docker://${host}/copy/${format}-dest:1`]);
    assert.equal(await registryDigest(host, `copy/${format}-dest`, "1"), source, `${format}: the destination serves the source's digest`);
    const sourceBytes = await skopeoRaw(NO_TLS, `docker://${host}/copy/${format}-src:1`);
    assert.ok((await skopeoRaw(NO_TLS, `docker://${host}/copy/${format}-dest:1`)).equals(sourceBytes), `${format}: the same bytes`);
  }
});

peerTest("an index PUT as indented JSON: gantry copy --all keeps its digest; without --all one platform is copied", async (t) => {
  const { layout, amd64, arm64 } = await images();
  const { host } = await registry();
  const work = await tmpDir(t);
  await skopeoPush(`${layout}:amd64`, `docker://${host}/copy/index:amd64`, "oci", work);
  await skopeoPush(`${layout}:arm64`, `docker://${host}/copy/index:arm64`, "oci", work);
  const index = handIndex([
    { ...amd64, platform: { os: "linux", architecture: "amd64" } },
    { ...arm64, platform: { os: "linux", architecture: "arm64" } },
  ]);
  const stored = await putManifest(host, "copy/index", "1", index, OCI_INDEX);
  assert.equal(stored, digestOf(index));
  await assertInspectKeeps(`docker://${host}/copy/index:1`, stored, OCI_INDEX);

  await gantryOk(["copy", "--all", `docker://${host}/copy/index:1`, `docker://${host}/copy/index-dest:1`]);
  assert.equal(await registryDigest(host, "copy/index-dest", "1"), stored, "the destination serves the index's digest");
  assert.ok((await skopeoRaw(NO_TLS, `docker://${host}/copy/index-dest:1`)).equals(index), "the index's indented bytes");
  for (const child of [amd64, arm64]) {
    assert.equal(await registryDigest(host, "copy/index-dest", child.digest), child.digest, `child ${child.digest} is in the destination`);
  }
  const arm = await skopeoInspect(NO_TLS, "--override-arch", "arm64", `docker://${host}/copy/index-dest:1`);
  assert.equal(arm.Architecture, "arm64");
  assert.deepEqual(arm.Layers, (await skopeoInspect(`oci:${layout}:arm64`)).Layers, "skopeo reads the arm64 image from the copy");

  if (hostArchitecture === undefined) return;
  await gantryOk(["copy", `docker://${host}/copy/index:1`, `docker://${host}/copy/index-one:1`]);
  const expected = hostArchitecture === "arm64" ? arm64.digest : amd64.digest;
  assert.equal(await registryDigest(host, "copy/index-one", "1"), expected, "without --all, the host's image, its manifest unchanged");
});
