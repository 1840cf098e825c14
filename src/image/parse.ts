import { isDigest } from "../model/digest.js";
import { FormatError, UnsupportedError } from "../model/errors.js";
import { MediaType, isIndexMediaType } from "../model/mediatypes.js";
import type { Descriptor, ImageConfigJson, IndexJson, ManifestJson } from "../model/oci.js";
import { checkJsonStructure } from "./json-structure.js";
import {
  boolean, checkFields, integer, isRecord, listOf, objectWith, rfc3339, setOfKeys, string, stringList, stringMap, type Rule,
} from "./json-fields.js";

/**
 * The one parser for what images are described by: manifests, indexes (OCI index or Docker
 * manifest list), descriptors and image configs, whichever transport read them. It checks
 * the type of every field the OCI image spec and Docker's image format define, as their Go
 * readers decode them (json-fields.ts), so that what gantry reads, and copies, another
 * tool reads too; it refuses keys given twice and documents over 4 MiB; and it keeps every
 * field it does not know, so the bytes (kept beside the parsed value) stay the source of
 * truth.
 *
 * `what` names the document in errors ("the manifest of 127.0.0.1:5000/app:1",
 * "blobs/sha256/ab… in ./layout").
 */

/**
 * distribution refuses manifests above 4 MiB, containerd and skopeo configs too; gantry
 * reads no JSON document larger, wherever it comes from.
 */
export const MAX_DOCUMENT_BYTES = 4 * 1024 * 1024;
/** The limit as the registry reader names it. */
export const MAX_MANIFEST_BYTES = MAX_DOCUMENT_BYTES;

/** A manifest or an index as parseManifestDocument reads it; `mediaType` is the declared one or, when none is, inferred from the shape. */
export type ManifestDocument =
  | { readonly kind: "index"; readonly mediaType: string; readonly index: IndexJson }
  | { readonly kind: "manifest"; readonly mediaType: string; readonly manifest: ManifestJson };

/** What we ask registries for, best first. */
export const MANIFEST_ACCEPT = [
  MediaType.ociIndex, MediaType.dockerManifestList, MediaType.ociManifest, MediaType.dockerManifest,
].join(", ");

const SCHEMA1 = /^application\/vnd\.docker\.distribution\.manifest\.v1/;

export { isRecord };

/**
 * Parses the bytes of an image document (a manifest, a config, an archive's manifest.json):
 * more than 4 MiB, bad JSON or a key given twice in one object is a FormatError naming `what`.
 */
export function parseJson(bytes: Buffer, what: string): unknown {
  if (bytes.length > MAX_DOCUMENT_BYTES) {
    throw new FormatError(`${what} is ${bytes.length} bytes, more than the ${MAX_DOCUMENT_BYTES} an image document may have`);
  }
  const text = bytes.toString("utf8");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new FormatError(`${what} is not valid JSON (${(err as Error).message}); the image is damaged, export it again`, { cause: err });
  }
  checkJsonStructure(text, what);
  return value;
}

/** An index entry's platform, with the fields Go's Platform struct reads. */
const platform = objectWith({
  architecture: string, os: string, variant: string, "os.version": string, "os.features": stringList, features: stringList,
});

/** A descriptor's fields other than digest and size (which are checked with their own words). */
const DESCRIPTOR_FIELDS: Readonly<Record<string, Rule>> = {
  mediaType: string, urls: stringList, annotations: stringMap, platform, artifactType: string, data: string,
};

/** What a manifest and an index have besides their descriptors. */
const DOCUMENT_FIELDS: Readonly<Record<string, Rule>> = {
  mediaType: string, annotations: stringMap, artifactType: string,
};

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
  const why = checkFields(d, DESCRIPTOR_FIELDS);
  if (why !== undefined) throw new FormatError(`${what} is not a valid descriptor: ${why}`);
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
  const json = parseJson(bytes, what);
  if (!isRecord(json)) throw new FormatError(`${what} is not a JSON object, so it is not a manifest`);
  const why = checkFields(json, DOCUMENT_FIELDS);
  if (why !== undefined) throw new FormatError(`${what} is not a valid manifest: ${why}`);
  if (json["subject"] !== undefined && json["subject"] !== null) parseDescriptor(json["subject"], `the subject of ${what}`);
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

/** The runtime config (`config`, and Docker's `container_config`): the OCI fields and Docker's. */
const containerConfig = objectWith({
  User: string, ExposedPorts: setOfKeys, Env: stringList, Entrypoint: stringList, Cmd: stringList, Volumes: setOfKeys,
  WorkingDir: string, Labels: stringMap, StopSignal: string, ArgsEscaped: boolean,
  Hostname: string, Domainname: string, AttachStdin: boolean, AttachStdout: boolean, AttachStderr: boolean, Tty: boolean,
  OpenStdin: boolean, StdinOnce: boolean, Image: string, NetworkDisabled: boolean, MacAddress: string, OnBuild: stringList,
  StopTimeout: integer, Shell: stringList,
  Healthcheck: objectWith({ Test: stringList, Interval: integer, Timeout: integer, StartPeriod: integer, StartInterval: integer, Retries: integer }),
});

const historyEntry = objectWith({ created: rfc3339, created_by: string, author: string, comment: string, empty_layer: boolean });

const CONFIG_FIELDS: Readonly<Record<string, Rule>> = {
  architecture: string, os: string, variant: string, "os.version": string, "os.features": stringList,
  created: rfc3339, author: string, config: containerConfig, container_config: containerConfig,
  history: listOf(historyEntry, "a list of history entries"), docker_version: string, container: string,
};

/**
 * Checks an image config: a JSON object whose `rootfs` is of type "layers" with digests for
 * `diff_ids`, and every field the OCI spec and Docker define of its type (the runtime
 * config's User, Env, Cmd, Entrypoint, ExposedPorts, Volumes, Labels…, each history entry,
 * `created` an RFC 3339 time). The bytes themselves are kept as they are, so the config
 * digest never changes.
 */
export function parseImageConfig(bytes: Buffer, what: string): ImageConfigJson {
  const json = parseJson(bytes, what);
  const bad = (why: string): FormatError => new FormatError(`${what} is not a valid image config: ${why}`);
  if (!isRecord(json)) throw bad("it is not a JSON object");
  const rootfs = json["rootfs"];
  if (!isRecord(rootfs) || !Array.isArray(rootfs["diff_ids"])) throw bad("it has no rootfs.diff_ids list");
  if (rootfs["type"] !== "layers") throw bad(`rootfs.type is ${JSON.stringify(rootfs["type"]) ?? "missing"}, not "layers"`);
  const badId = (rootfs["diff_ids"] as unknown[]).find((d) => !isDigest(d));
  if (badId !== undefined) throw bad(`rootfs.diff_ids holds "${String(badId)}", which is not a sha256 digest`);
  const why = checkFields(json, CONFIG_FIELDS);
  if (why !== undefined) throw bad(why);
  return json as ImageConfigJson;
}
