import { test } from "node:test";
import assert from "node:assert/strict";
import { sha256 } from "../../src/model/digest.js";
import { FormatError, GantryError } from "../../src/model/errors.js";
import { MediaType } from "../../src/model/mediatypes.js";
import type { Image } from "../../src/model/image.js";
import { buildManifest } from "../../src/image/manifest.js";
import { convertDocument, remadeImage } from "../../src/image/image.js";
import { parseManifestDocument } from "../../src/image/parse.js";
import { makeTestImage } from "../helpers/registry.js";

const D = (c: string): string => `sha256:${c.repeat(64)}`;
const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));

test("manifest documents are classified by mediaType, then Content-Type, then shape", () => {
  const manifest = { schemaVersion: 2, config: { mediaType: MediaType.dockerConfig, digest: D("a"), size: 1 }, layers: [] };
  // umoci writes no mediaType: the config's media type tells the family.
  assert.deepEqual(
    { ...parseManifestDocument(json(manifest), undefined, "m"), manifest: undefined },
    { kind: "manifest", mediaType: MediaType.dockerManifest, manifest: undefined },
  );
  const oci = { ...manifest, config: { ...manifest.config, mediaType: MediaType.ociConfig } };
  assert.equal(parseManifestDocument(json(oci), "application/json", "m").mediaType, MediaType.ociManifest);
  assert.equal(parseManifestDocument(json(oci), `${MediaType.dockerManifest}; charset=utf-8`, "m").mediaType, MediaType.dockerManifest);

  const list = { schemaVersion: 2, mediaType: MediaType.dockerManifestList, manifests: [{ mediaType: MediaType.dockerManifest, digest: D("b"), size: 2 }] };
  const doc = parseManifestDocument(json(list), MediaType.ociIndex, "l");
  assert.equal(doc.kind, "index");
  assert.equal(doc.mediaType, MediaType.dockerManifestList, "the body's mediaType wins over the header");
  const bare = { schemaVersion: 2, manifests: list.manifests };
  assert.equal(parseManifestDocument(json(bare), undefined, "l").kind, "index");
});

test("schema 1, non-JSON and shapeless documents are refused naming the document", () => {
  assert.throws(() => parseManifestDocument(json({ schemaVersion: 1, fsLayers: [] }), undefined, "the manifest of x:1"),
    (e: unknown) => e instanceof GantryError && e.code === "UNSUPPORTED" && /the manifest of x:1 is a Docker schema 1/.test(e.message));
  assert.throws(() => parseManifestDocument(Buffer.from("<html>"), "text/html", "the manifest of x:1"),
    (e: unknown) => e instanceof FormatError && /the manifest of x:1 is not valid JSON/.test(e.message));
  assert.throws(() => parseManifestDocument(json({ schemaVersion: 2, config: { digest: "sha256:short", size: 1 }, layers: [] }), undefined, "m"),
    (e: unknown) => e instanceof FormatError && /the config descriptor of m has a malformed digest/.test(e.message));
  assert.throws(() => parseManifestDocument(json({ schemaVersion: 2, layers: [] }), undefined, "m"),
    (e: unknown) => e instanceof FormatError && /no valid "config" and "layers"/.test(e.message));
  assert.throws(() => parseManifestDocument(json({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [{ digest: D("c") }] }), undefined, "i"),
    (e: unknown) => e instanceof FormatError && /entry 1 of i has no valid size/.test(e.message));
  assert.throws(() => parseManifestDocument(json({ schemaVersion: 2, mediaType: MediaType.ociIndex }), undefined, "i"),
    (e: unknown) => e instanceof FormatError && /without a valid "manifests"/.test(e.message));
});

test("an image keeps its manifest bytes in its own family; another family, or other layers, make a new one", async () => {
  const image = await makeTestImage({ label: "m" });
  // Bytes no writer of ours would produce (indentation, an annotation): only keeping them keeps them.
  const original = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MediaType.dockerManifest,
    config: { mediaType: MediaType.dockerConfig, digest: image.configDigest, size: image.configBytes.length },
    layers: image.layers.map((l) => ({ mediaType: MediaType.dockerLayerGzip, digest: l.digest, size: l.size })),
    annotations: { from: "elsewhere" },
  }, null, 3));
  const pulled: Image = { ...image, manifestBytes: original, digest: sha256(original), mediaType: MediaType.dockerManifest };
  assert.equal(await convertDocument(pulled, "docker"), pulled, "already Docker: kept as it is");
  const asOci = await convertDocument(pulled, "oci");
  assert.equal(asOci.mediaType, MediaType.ociManifest);
  assert.equal(asOci.digest, buildManifest(image, "oci").digest, "another family is written afresh");
  const fewer = remadeImage(pulled, { layers: [] });
  assert.equal(fewer.mediaType, MediaType.dockerManifest, "other layers: a new manifest in the image's own family");
  assert.equal(fewer.digest, buildManifest({ ...image, layers: [] }, "docker").digest);
});
