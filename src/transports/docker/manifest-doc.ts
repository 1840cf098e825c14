import { FormatError, UnsupportedError } from "../../model/errors.js";
import { isDigest } from "../../model/digest.js";
import { MediaType, isIndexMediaType } from "../../model/mediatypes.js";
import type { Descriptor, IndexJson, ManifestJson } from "../../model/oci.js";

/**
 * A manifest document as a registry serves it, classified: an index (OCI index or Docker
 * manifest list) or an image manifest (OCI or Docker v2s2). The `mediaType` field wins, then
 * the Content-Type, then the shape (umoci writes manifests without `mediaType`).
 */
export type ManifestDocument =
  | { readonly kind: "index"; readonly mediaType: string; readonly index: IndexJson }
  | { readonly kind: "manifest"; readonly mediaType: string; readonly manifest: ManifestJson };

/** What we ask registries for, best first. */
export const MANIFEST_ACCEPT = [
  MediaType.ociIndex, MediaType.dockerManifestList, MediaType.ociManifest, MediaType.dockerManifest,
].join(", ");

const SCHEMA1 = /^application\/vnd\.docker\.distribution\.manifest\.v1/;

/** `what` names the document in errors, e.g. "the manifest of docker.io/library/x:1". */
export function parseManifestDocument(bytes: Buffer, contentType: string | undefined, what: string): ManifestDocument {
  let json: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(bytes.toString("utf8"));
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("not an object");
    json = parsed as Record<string, unknown>;
  } catch (err) {
    throw new FormatError(`${what} is not valid JSON; the registry sent something other than a manifest`, { cause: err });
  }
  const declared = typeof json["mediaType"] === "string" ? json["mediaType"] : bareType(contentType);
  if (json["schemaVersion"] === 1 || (declared !== undefined && SCHEMA1.test(declared))) {
    throw new UnsupportedError(`${what} is a Docker schema 1 manifest, which gantry does not read; push the image again with a current tool`);
  }
  if (isIndexMediaType(declared) || (declared === undefined && Array.isArray(json["manifests"]))) {
    const manifests = json["manifests"];
    if (!Array.isArray(manifests) || !manifests.every(isDescriptor)) {
      throw new FormatError(`${what} is an index without a valid "manifests" list`);
    }
    return { kind: "index", mediaType: declared ?? MediaType.ociIndex, index: json as unknown as IndexJson };
  }
  const config = json["config"];
  const layers = json["layers"];
  if (!isDescriptor(config) || !Array.isArray(layers) || !layers.every(isDescriptor)) {
    throw new FormatError(`${what} (media type ${declared ?? "unknown"}) has no valid "config" and "layers"; it is not an image manifest gantry can read`);
  }
  const mediaType = declared
    ?? (config.mediaType === MediaType.dockerConfig ? MediaType.dockerManifest : MediaType.ociManifest);
  return { kind: "manifest", mediaType, manifest: json as unknown as ManifestJson };
}

function isDescriptor(d: unknown): d is Descriptor {
  if (typeof d !== "object" || d === null) return false;
  const o = d as Record<string, unknown>;
  return isDigest(o["digest"]) && typeof o["size"] === "number" && Number.isSafeInteger(o["size"]) && o["size"] >= 0;
}

function bareType(contentType: string | undefined): string | undefined {
  const t = contentType?.split(";")[0]?.trim();
  return t === "" || t === "application/json" || t === "text/plain" ? undefined : t;
}
