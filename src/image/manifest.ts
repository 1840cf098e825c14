import { sha256, type Digest } from "../model/digest.js";
import type { Layer } from "../model/image.js";
import { MediaType, layerMediaType } from "../model/mediatypes.js";
import type { Descriptor, IndexJson, ManifestJson } from "../model/oci.js";

/**
 * The one place manifests are made, for images that have none of their own (a build, a
 * docker-archive, the Docker engine) and for conversions (another family, recompressed
 * layers). The JSON is built with keys in a fixed order and serialised compactly, so the
 * same image always gets the same manifest digest, whichever writer asks for it.
 * A manifest a source holds is never made again: its bytes are kept (model/image.ts).
 */

/** Which media types an image's manifest, config and index take: OCI's, or Docker's schema 2. */
export type ManifestFamily = "oci" | "docker";

/** A manifest or index built here, with its media type. */
export interface BuiltDocument<J> {
  /** `json` serialised compactly: what is stored and pushed, and what `digest` is the sha256 of. */
  bytes: Buffer;
  digest: Digest;
  json: J;
  mediaType: string;
}

/** The image manifest media type of `family`: OCI's, or Docker's schema 2. */
export function manifestMediaType(family: ManifestFamily): string {
  return family === "oci" ? MediaType.ociManifest : MediaType.dockerManifest;
}

/** The media type a manifest of `family` gives its config descriptor. */
export function configMediaType(family: ManifestFamily): string {
  return family === "oci" ? MediaType.ociConfig : MediaType.dockerConfig;
}

/** The index media type of `family`: an OCI image index, or a Docker manifest list. */
export function indexMediaType(family: ManifestFamily): string {
  return family === "oci" ? MediaType.ociIndex : MediaType.dockerManifestList;
}

/** The family a manifest or index media type belongs to. */
export function familyOf(mediaType: string): ManifestFamily {
  return mediaType === MediaType.dockerManifest || mediaType === MediaType.dockerManifestList ? "docker" : "oci";
}

/** A layer's descriptor in `family`: its media type respelled, its annotations and URLs kept. */
function layerDescriptor(layer: Layer, family: ManifestFamily): Descriptor {
  const d: Descriptor = { mediaType: layerMediaType(layer.compression, family), digest: layer.digest, size: layer.size };
  if (layer.descriptor.urls !== undefined) d.urls = layer.descriptor.urls;
  if (layer.descriptor.annotations !== undefined) d.annotations = layer.descriptor.annotations;
  return d;
}

/**
 * What buildManifest reads of an image: the config, whose `configDigest` must be the sha256 of
 * `configBytes`, and the layers in the order of its diff_ids.
 */
export interface ManifestParts {
  readonly configDigest: Digest;
  readonly configBytes: Buffer;
  readonly layers: readonly Layer[];
}

/**
 * The manifest of `image` in `family`, whose bytes depend on the image alone: each layer's media
 * type is respelled for the family from its compression, its annotations and URLs are kept.
 */
export function buildManifest(image: ManifestParts, family: ManifestFamily): BuiltDocument<ManifestJson> {
  const mediaType = manifestMediaType(family);
  const config: Descriptor = { mediaType: configMediaType(family), digest: image.configDigest, size: image.configBytes.length };
  const json: ManifestJson = { schemaVersion: 2, mediaType, config, layers: image.layers.map((l) => layerDescriptor(l, family)) };
  const bytes = Buffer.from(JSON.stringify(json));
  return { bytes, digest: sha256(bytes), json, mediaType };
}

/** An index over `manifests` (descriptors with their platforms), in `family`. */
export function buildIndex(manifests: readonly Descriptor[], family: ManifestFamily, annotations?: Record<string, string>): BuiltDocument<IndexJson> {
  const mediaType = indexMediaType(family);
  const json: IndexJson = { schemaVersion: 2, mediaType, manifests: [...manifests] };
  if (annotations !== undefined) json.annotations = annotations;
  const bytes = Buffer.from(JSON.stringify(json));
  return { bytes, digest: sha256(bytes), json, mediaType };
}
