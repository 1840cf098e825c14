import { test } from "node:test";
import assert from "node:assert/strict";
import { sha256 } from "../../src/model/digest.js";
import { FormatError, GantryError } from "../../src/model/errors.js";
import { MediaType } from "../../src/model/mediatypes.js";
import { imageManifest } from "../../src/image/manifest.js";
import { manifestForPush } from "../../src/transports/docker/manifest.js";
import { parseManifestDocument } from "../../src/transports/docker/manifest-doc.js";
import type { RegistryImage } from "../../src/transports/docker/origin.js";
import { parseRegistryReference } from "../../src/transports/docker/reference.js";
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
    (e: unknown) => e instanceof FormatError && /no valid "config" and "layers"/.test(e.message));
  assert.throws(() => parseManifestDocument(json({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [{ digest: D("c") }] }), undefined, "i"),
    (e: unknown) => e instanceof FormatError && /without a valid "manifests"/.test(e.message));
});

test("a registry image keeps its manifest bytes when unchanged and in the asked family", async () => {
  const image = await makeTestImage({ label: "m" });
  // Bytes no writer of ours would produce (indentation, an annotation): only reuse keeps them.
  const original = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MediaType.dockerManifest,
    config: { mediaType: MediaType.dockerConfig, digest: image.configDigest, size: image.configBytes.length },
    layers: image.layers.map((l) => ({ mediaType: MediaType.dockerLayerGzip, digest: l.digest, size: l.size })),
    annotations: { from: "elsewhere" },
  }, null, 3));
  const pulled: RegistryImage = {
    ...image,
    registrySource: {
      reference: parseRegistryReference("docker://r.io/a:1"), manifestDigest: sha256(original),
      manifestMediaType: MediaType.dockerManifest, manifestBytes: original,
    },
  };
  assert.equal(manifestForPush(pulled, undefined).digest, sha256(original));
  assert.equal(manifestForPush(pulled, "v2s2").bytes, original);
  assert.equal(manifestForPush(pulled, "oci").digest, imageManifest(image, "oci").digest, "another family is written afresh");
  const changed: RegistryImage = { ...pulled, layers: [] };
  assert.equal(manifestForPush(changed, undefined).digest, imageManifest(changed, "oci").digest, "changed layers: a fresh OCI manifest");
  assert.equal(manifestForPush(image, "v2s2").mediaType, MediaType.dockerManifest);
});
