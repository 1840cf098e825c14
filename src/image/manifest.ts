import { sha256, type Digest } from "../model/digest.js";
import type { Image } from "../model/image.js";
import { MediaType, layerMediaType } from "../model/mediatypes.js";
import type { Descriptor, ManifestJson } from "../model/oci.js";

/**
 * The one place image manifests are made. The JSON is built with keys in a fixed
 * order and serialised compactly, so the same image always has the same manifest
 * digest, whichever writer (archive, layout, registry) asks for it.
 */

export type ManifestFamily = "oci" | "docker";

export interface BuiltManifest {
  bytes: Buffer;
  digest: Digest;
  json: ManifestJson;
  mediaType: string;
}

export function manifestMediaType(family: ManifestFamily): string {
  return family === "oci" ? MediaType.ociManifest : MediaType.dockerManifest;
}

export function configMediaType(family: ManifestFamily): string {
  return family === "oci" ? MediaType.ociConfig : MediaType.dockerConfig;
}

export function imageManifest(image: Image, family: ManifestFamily): BuiltManifest {
  const mediaType = manifestMediaType(family);
  const config: Descriptor = { mediaType: configMediaType(family), digest: image.configDigest, size: image.configBytes.length };
  const layers: Descriptor[] = image.layers.map((l) => ({
    mediaType: layerMediaType(l.compression, family),
    digest: l.digest,
    size: l.size,
  }));
  const json: ManifestJson = { schemaVersion: 2, mediaType, config, layers };
  const bytes = Buffer.from(JSON.stringify(json));
  return { bytes, digest: sha256(bytes), json, mediaType };
}
