import { test } from "node:test";
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { sha256, type Digest } from "../../src/model/digest.js";
import type { Image, ImageOrIndex } from "../../src/model/image.js";
import { MediaType } from "../../src/model/mediatypes.js";
import type { Descriptor, Platform } from "../../src/model/oci.js";
import { convertDocument, readDocument, type BlobReader } from "../../src/image/image.js";
import { imageForPlatform } from "../../src/image/select.js";
import { makeTestImage } from "../helpers/registry.js";
import { isCode } from "./formats-fixtures.js";

/**
 * Indexes in the model, over an in-memory store of blobs: documents are kept byte for byte
 * (indented JSON included), children are checked against their descriptors, and one image
 * is chosen by platform the same way for every transport.
 */

/** Blobs by digest, as a transport would hold them; every read is counted. */
class MemoryStore implements BlobReader {
  readonly blobs = new Map<Digest, Buffer>();
  reads = 0;

  put(bytes: Buffer): Descriptor & { bytes: Buffer } {
    const digest = sha256(bytes);
    this.blobs.set(digest, bytes);
    return { mediaType: "", digest, size: bytes.length, bytes };
  }

  where(desc: Descriptor): string {
    return `memory@${desc.digest}`;
  }

  private get(desc: Descriptor): Buffer {
    this.reads++;
    const bytes = this.blobs.get(desc.digest);
    if (!bytes) throw new Error(`no blob ${desc.digest}`);
    return bytes;
  }

  async readManifest(desc: Descriptor): Promise<Buffer> { return this.get(desc); }
  async readBlob(desc: Descriptor): Promise<Buffer> { return this.get(desc); }
  async openBlob(desc: Descriptor): Promise<Readable> { return Readable.from([this.get(desc)]); }
}

/** An image's blobs in the store, its manifest written with indentation (as no writer of ours would). */
async function storeImage(store: MemoryStore, architecture: string): Promise<{ image: Image; desc: Descriptor }> {
  const image = await makeTestImage({ architecture, label: architecture });
  store.put(image.configBytes);
  for (const layer of image.layers) {
    const chunks: Buffer[] = [];
    for await (const c of await layer.open()) chunks.push(c as Buffer);
    store.put(Buffer.concat(chunks));
  }
  const manifest = store.put(Buffer.from(`${JSON.stringify(JSON.parse(image.manifestBytes.toString()), null, 2)}\n`));
  return { image, desc: { mediaType: MediaType.ociManifest, digest: manifest.digest, size: manifest.size } };
}

function indexBytes(entries: { desc: Descriptor; platform?: Platform }[]): Buffer {
  const manifests = entries.map(({ desc, platform }) => (platform ? { ...desc, platform } : desc));
  return Buffer.from(`${JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests }, null, 4)}\n`);
}

test("an index is read as it is stored: its bytes, digest and children, each checked against its descriptor", async () => {
  const store = new MemoryStore();
  const amd = await storeImage(store, "amd64");
  const arm = await storeImage(store, "arm64");
  const bytes = indexBytes([
    { desc: amd.desc, platform: { os: "linux", architecture: "amd64" } },
    { desc: arm.desc, platform: { os: "linux", architecture: "arm64", variant: "v8" } },
  ]);
  const doc = await readDocument(store, { bytes, what: "the test index" });
  assert.equal(doc.kind, "index");
  if (doc.kind !== "index") return;
  assert.equal(doc.manifestBytes, bytes, "the indented bytes themselves");
  assert.equal(doc.digest, sha256(bytes));
  assert.equal(doc.mediaType, MediaType.ociIndex);
  assert.equal(store.reads, 0, "children are read only when asked for");

  const child = await doc.image(arm.desc.digest);
  assert.equal(child.digest, arm.desc.digest, "the child keeps its own (indented) manifest digest");
  assert.notEqual(child.digest, arm.image.digest);
  assert.equal(child.configDigest, arm.image.configDigest);
  assert.equal(await doc.image(arm.desc.digest), child, "read once");
  await assert.rejects(doc.index(arm.desc.digest), isCode("FORMAT_INVALID", "is an image"));
  await assert.rejects(doc.image(sha256("nothing")), isCode("IMAGE_NOT_FOUND"));

  // A child whose stored bytes are not what the index says is refused, naming it.
  store.blobs.set(amd.desc.digest, Buffer.concat([store.blobs.get(amd.desc.digest)!, Buffer.from(" ")]));
  await assert.rejects(doc.image(amd.desc.digest), isCode("DIGEST_MISMATCH", amd.desc.digest));
});

test("one image is chosen by platform; a platform-less child when it is the only one; nested indexes followed", async () => {
  const store = new MemoryStore();
  const amd = await storeImage(store, "amd64");
  const arm = await storeImage(store, "arm64");
  const s390 = await storeImage(store, "s390x");
  const labelled = await readDocument(store, {
    bytes: indexBytes([
      { desc: amd.desc, platform: { os: "linux", architecture: "amd64" } },
      { desc: arm.desc, platform: { os: "linux", architecture: "arm64", variant: "v8" } },
    ]),
    what: "the index",
  });
  const pick = async (doc: ImageOrIndex, p: Platform): Promise<string> => (await imageForPlatform(doc, p, "the index")).config.architecture;
  assert.equal(await pick(labelled, { os: "linux", architecture: "arm64" }), "arm64", "no variant asked: any variant");
  assert.equal(await pick(labelled, { os: "linux", architecture: "arm64", variant: "v8" }), "arm64");
  await assert.rejects(pick(labelled, { os: "linux", architecture: "arm64", variant: "v7" }), isCode("IMAGE_NOT_FOUND", "linux/arm64/v7", "linux/amd64", "linux/arm64/v8"));
  await assert.rejects(pick(labelled, { os: "linux", architecture: "s390x" }), isCode("IMAGE_NOT_FOUND", "linux/s390x", "--platform"));

  // go-containerregistry's test indexes have children with no platform: one such child is taken.
  const unlabelled = await readDocument(store, { bytes: indexBytes([{ desc: s390.desc }]), what: "the index" });
  assert.equal(await pick(unlabelled, { os: "linux", architecture: "amd64" }), "s390x");
  const twoUnlabelled = await readDocument(store, { bytes: indexBytes([{ desc: s390.desc }, { desc: amd.desc }]), what: "the index" });
  await assert.rejects(pick(twoUnlabelled, { os: "linux", architecture: "arm64" }), isCode("IMAGE_NOT_FOUND", "no platform"));

  const inner = store.put(labelled.manifestBytes);
  const nested = await readDocument(store, { bytes: indexBytes([{ desc: { ...inner, mediaType: MediaType.ociIndex } }]), what: "the outer index" });
  assert.equal(await pick(nested, { os: "linux", architecture: "amd64" }), "amd64");
});

test("converting an index converts its images and writes the index anew; in its own family it stays as it is", async () => {
  const store = new MemoryStore();
  const amd = await storeImage(store, "amd64");
  const doc = await readDocument(store, { bytes: indexBytes([{ desc: amd.desc, platform: { os: "linux", architecture: "amd64" } }]), what: "the index" });
  assert.equal(await convertDocument(doc, "oci"), doc);
  const docker = await convertDocument(doc, "docker");
  assert.equal(docker.kind, "index");
  if (docker.kind !== "index") return;
  assert.equal(docker.mediaType, MediaType.dockerManifestList);
  const child = await docker.image(docker.manifests[0]!.digest);
  assert.equal(child.mediaType, MediaType.dockerManifest);
  assert.deepEqual(docker.manifests[0]!.platform, { os: "linux", architecture: "amd64" }, "the platform is kept");
  assert.equal(docker.manifests[0]!.mediaType, MediaType.dockerManifest);
});
