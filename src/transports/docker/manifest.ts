import type { Digest } from "../../model/digest.js";
import type { Image } from "../../model/image.js";
import { imageManifest } from "../../image/manifest.js";
import { MediaType } from "../../model/mediatypes.js";
import type { ManifestJson } from "../../model/oci.js";
import { registrySourceOf } from "./origin.js";

/** The manifest a push sends: exact bytes, their digest and the Content-Type to send them with. */
export interface ManifestToPush {
  readonly bytes: Buffer;
  readonly digest: Digest;
  readonly mediaType: string;
}

export type ManifestFormat = "oci" | "v2s2";

/**
 * The manifest for `image`. An image read from a registry and unchanged keeps its original
 * manifest bytes (so a copy keeps its digest) unless another format is asked for; otherwise
 * one is written in the requested family, OCI by default.
 */
export function manifestForPush(image: Image, format: ManifestFormat | undefined): ManifestToPush {
  const original = originalManifest(image, format);
  if (original) return original;
  const built = imageManifest(image, format === "v2s2" ? "docker" : "oci");
  return { bytes: built.bytes, digest: built.digest, mediaType: built.mediaType };
}

function originalManifest(image: Image, format: ManifestFormat | undefined): ManifestToPush | undefined {
  const source = registrySourceOf(image);
  if (!source) return undefined;
  const family: ManifestFormat = source.manifestMediaType === MediaType.dockerManifest ? "v2s2" : "oci";
  if (format !== undefined && format !== family) return undefined;
  // The source's manifest still describes this image only if config and layers are the same.
  let original: ManifestJson;
  try {
    original = JSON.parse(source.manifestBytes.toString("utf8")) as ManifestJson;
  } catch {
    return undefined;
  }
  const same = original.config?.digest === image.configDigest
    && original.layers?.length === image.layers.length
    && original.layers.every((d, i) => d.digest === image.layers[i]?.digest);
  return same ? { bytes: source.manifestBytes, digest: source.manifestDigest, mediaType: source.manifestMediaType } : undefined;
}
