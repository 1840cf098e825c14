import { isDigest } from "../model/digest.js";
import { FormatError, UnsupportedError } from "../model/errors.js";
import { MediaType, isIndexMediaType } from "../model/mediatypes.js";
import type { Descriptor, ImageConfigJson, IndexJson, ManifestJson } from "../model/oci.js";

/**
 * The one parser for what images are described by: manifests, indexes (OCI index or Docker
 * manifest list), descriptors and image configs, whichever transport read them. It checks
 * enough for everything downstream to rely on and keeps every field it does not check, so
 * the bytes (kept beside the parsed value) stay the source of truth.
 *
 * `what` names the document in errors ("the manifest of 127.0.0.1:5000/app:1",
 * "blobs/sha256/ab… in ./layout").
 */

/** distribution refuses manifests above 4 MiB; so do we, wherever they come from. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export type ManifestDocument =
  | { readonly kind: "index"; readonly mediaType: string; readonly index: IndexJson }
  | { readonly kind: "manifest"; readonly mediaType: string; readonly manifest: ManifestJson };

/** What we ask registries for, best first. */
export const MANIFEST_ACCEPT = [
  MediaType.ociIndex, MediaType.dockerManifestList, MediaType.ociManifest, MediaType.dockerManifest,
].join(", ");

const SCHEMA1 = /^application\/vnd\.docker\.distribution\.manifest\.v1/;

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Parses JSON bytes; bad JSON is a FormatError naming `what`. */
export function parseJson(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString("utf8"));
  } catch (err) {
    throw new FormatError(`${what} is not valid JSON (${(err as Error).message}); the image is damaged, export it again`, { cause: err });
  }
}

/** A descriptor: a sha256 digest, a size, an optional media type; other fields kept as they are. */
export function parseDescriptor(d: unknown, what: string): Descriptor {
  if (!isRecord(d)) throw new FormatError(`${what} is not a descriptor object`);
  const { mediaType, digest, size } = d;
  if (typeof digest !== "string") throw new FormatError(`${what} has no digest`);
  if (!isDigest(digest)) {
    if (/^[a-z0-9]+(?:[+._-][a-z0-9]+)*:/.test(digest) && !digest.startsWith("sha256:")) {
      throw new UnsupportedError(`${what} uses the digest algorithm of ${digest}; gantry reads sha256 blobs only`);
    }
    throw new FormatError(`${what} has a malformed digest "${digest}"`);
  }
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) throw new FormatError(`${what} has no valid size`);
  if (mediaType !== undefined && typeof mediaType !== "string") throw new FormatError(`${what} has a non-string mediaType`);
  return d as unknown as Descriptor;
}

/** A media type as sent in a Content-Type header or a descriptor, without parameters; generic JSON types say nothing. */
function declaredType(hint: string | undefined): string | undefined {
  const t = hint?.split(";")[0]?.trim();
  return t === undefined || t === "" || t === "application/json" || t === "text/plain" || t === "application/octet-stream" ? undefined : t;
}

/**
 * Classifies and checks a manifest document. Its media type is the document's own
 * `mediaType` field, else `hint` (a descriptor's media type or a Content-Type), else its
 * shape: a `manifests` list is an index, and a manifest whose config is Docker's is Docker's
 * (umoci writes manifests with no `mediaType`).
 */
export function parseManifestDocument(bytes: Buffer, hint: string | undefined, what: string): ManifestDocument {
  if (bytes.length > MAX_MANIFEST_BYTES) {
    throw new FormatError(`${what} is ${bytes.length} bytes, more than the ${MAX_MANIFEST_BYTES} a manifest may have`);
  }
  const json = parseJson(bytes, what);
  if (!isRecord(json)) throw new FormatError(`${what} is not a JSON object, so it is not a manifest`);
  const declared = typeof json["mediaType"] === "string" ? json["mediaType"] : declaredType(hint);
  if (json["schemaVersion"] === 1 || (declared !== undefined && SCHEMA1.test(declared))) {
    throw new UnsupportedError(`${what} is a Docker schema 1 manifest, which gantry does not read; push the image again with a current tool`);
  }
  if (json["schemaVersion"] !== 2) throw new FormatError(`${what} has schemaVersion ${JSON.stringify(json["schemaVersion"])}, not 2`);
  if (isIndexMediaType(declared) || (declared === undefined && Array.isArray(json["manifests"]))) {
    const manifests = json["manifests"];
    if (!Array.isArray(manifests)) throw new FormatError(`${what} is an index without a valid "manifests" list`);
    const parsed = manifests.map((d, i) => parseDescriptor(d, `entry ${i + 1} of ${what}`));
    return { kind: "index", mediaType: declared ?? MediaType.ociIndex, index: { ...(json as unknown as IndexJson), manifests: parsed } };
  }
  if (json["config"] === undefined || !Array.isArray(json["layers"])) {
    throw new FormatError(`${what} (media type ${declared ?? "unknown"}) has no valid "config" and "layers"; it is not an image manifest gantry can read`);
  }
  const config = parseDescriptor(json["config"], `the config descriptor of ${what}`);
  const layers = json["layers"].map((d, i) => parseDescriptor(d, `layer ${i + 1} of ${what}`));
  const mediaType = declared
    ?? (config.mediaType === MediaType.dockerConfig ? MediaType.dockerManifest : MediaType.ociManifest);
  return { kind: "manifest", mediaType, manifest: { ...(json as unknown as ManifestJson), config, layers } };
}

/**
 * Checks an image config's bytes enough for everything downstream to rely on:
 * a JSON object whose `rootfs.diff_ids` are digests, and string platform fields.
 * The bytes themselves are kept as they are, so the config digest never changes.
 */
export function parseImageConfig(bytes: Buffer, what: string): ImageConfigJson {
  const json = parseJson(bytes, what);
  const bad = (why: string): FormatError => new FormatError(`${what} is not a valid image config: ${why}`);
  if (!isRecord(json)) throw bad("it is not a JSON object");
  const rootfs = json["rootfs"];
  if (!isRecord(rootfs) || !Array.isArray(rootfs["diff_ids"])) throw bad("it has no rootfs.diff_ids list");
  const badId = (rootfs["diff_ids"] as unknown[]).find((d) => !isDigest(d));
  if (badId !== undefined) throw bad(`rootfs.diff_ids holds "${String(badId)}", which is not a sha256 digest`);
  for (const field of ["architecture", "os", "variant", "created"]) {
    if (json[field] !== undefined && typeof json[field] !== "string") throw bad(`"${field}" is not a string`);
  }
  return json as ImageConfigJson;
}
