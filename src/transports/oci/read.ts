import { isDigest, sha256 } from "../../model/digest.js";
import { DigestMismatchError, FormatError, ImageNotFoundError, UnsupportedError } from "../../model/errors.js";
import type { Image, ImageSummary, Layer } from "../../model/image.js";
import { compressionOfMediaType, isIndexMediaType } from "../../model/mediatypes.js";
import type { Descriptor, ImageConfigJson, IndexJson, ManifestJson, Platform } from "../../model/oci.js";
import { formatPlatform, hostPlatform, parsePlatform, platformMatches } from "../../model/platform.js";
import { bagLayer } from "../../archive/bag-layer.js";
import { isRecord, parseImageConfig } from "../../image/config-json.js";
import type { FileBag } from "../../archive/file-bag.js";
import { pickCandidate } from "../pick.js";
import { matchesRepoTag, parseRepoTag } from "../image-name.js";
import { ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, OCI_INDEX_FILE, OCI_LAYOUT_FILE, blobPath } from "./names.js";

/**
 * OCI image layout, as a directory or a tar of one (the same reader over a FileBag):
 * `oci-layout`, `index.json`, `blobs/sha256/HEX`. An index entry may itself be an
 * index (or a Docker manifest list), resolved by platform. Every blob is verified.
 */

/** Nested indexes deeper than this are malformed (real ones nest once). */
const MAX_INDEX_DEPTH = 4;

export interface OciReadOptions {
  /** `org.opencontainers.image.ref.name` of the wanted entry (oci:DIR:REF). */
  refName?: string;
  /** NAME[:TAG], matched against the entries' names when no refName is given. */
  pick?: string;
  /** `os/arch[/variant]` for a multi-platform index; the host's when absent. */
  platform?: string;
  signal?: AbortSignal;
}

function parseDescriptor(d: unknown, what: string): Descriptor {
  if (!isRecord(d)) throw new FormatError(`${what} is not a descriptor object`);
  const { mediaType, digest, size } = d;
  if (typeof digest !== "string") throw new FormatError(`${what} has no digest`);
  if (!isDigest(digest)) {
    if (/^[a-z0-9]+:/.test(digest) && !digest.startsWith("sha256:")) {
      throw new UnsupportedError(`${what} uses the digest algorithm of ${digest}; gantry reads sha256 blobs only`);
    }
    throw new FormatError(`${what} has a malformed digest "${digest}"`);
  }
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) throw new FormatError(`${what} has no valid size`);
  if (mediaType !== undefined && typeof mediaType !== "string") throw new FormatError(`${what} has a non-string mediaType`);
  return d as unknown as Descriptor;
}

/** A small blob (index, manifest, config) read whole and checked against its descriptor. */
async function readBlob(bag: FileBag, desc: Descriptor, what: string): Promise<Buffer> {
  const name = blobPath(desc.digest);
  if (!(await bag.has(name))) throw new FormatError(`${what} ${desc.digest} is missing from ${bag.label} (no ${name}); the layout is incomplete`);
  const bytes = await bag.readBytes(name);
  const actual = sha256(bytes);
  if (actual !== desc.digest || bytes.length !== desc.size) {
    throw new DigestMismatchError(`${what} ${bag.describe(name)} does not match its descriptor: expected ${desc.digest} (${desc.size} bytes), got ${actual} (${bytes.length} bytes)`);
  }
  return bytes;
}

async function readJsonBlob(bag: FileBag, desc: Descriptor, what: string): Promise<Record<string, unknown>> {
  const bytes = await readBlob(bag, desc, what);
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString("utf8"));
  } catch (err) {
    throw new FormatError(`${what} ${bag.describe(blobPath(desc.digest))} is not valid JSON; the layout is damaged`, { cause: err });
  }
  if (!isRecord(json)) throw new FormatError(`${what} ${bag.describe(blobPath(desc.digest))} is not a JSON object; the layout is damaged`);
  return json;
}

function parseIndex(json: unknown, what: string): IndexJson {
  if (!isRecord(json) || !Array.isArray(json["manifests"])) throw new FormatError(`${what} is not an image index (no "manifests" list); the layout is damaged`);
  const manifests = json["manifests"].map((d, i) => parseDescriptor(d, `entry ${i + 1} of ${what}`));
  return { ...(json as unknown as IndexJson), manifests };
}

export async function readTopIndex(bag: FileBag): Promise<IndexJson> {
  if (!(await bag.has(OCI_LAYOUT_FILE))) {
    throw new FormatError(`${bag.label} is not an OCI image layout: it has no ${OCI_LAYOUT_FILE} file`);
  }
  return parseIndex(await bag.readJson(OCI_INDEX_FILE), bag.describe(OCI_INDEX_FILE));
}

/** The names an index entry gives its image: the containerd name, or a ref name that is a full NAME:TAG. */
export function repoTagsOf(desc: Descriptor): string[] {
  const annotations = desc.annotations ?? {};
  const full = annotations[ANNOTATION_CONTAINERD_NAME];
  if (full !== undefined) return [full];
  const ref = annotations[ANNOTATION_REF_NAME];
  if (ref !== undefined && ref.includes(":")) {
    try {
      parseRepoTag(ref, "the ref name");
      return [ref];
    } catch {
      return [];
    }
  }
  return [];
}

function entryLabel(desc: Descriptor): string {
  const ref = desc.annotations?.[ANNOTATION_REF_NAME];
  return ref !== undefined ? `ref ${ref}` : desc.digest;
}

function selectEntry(index: IndexJson, bag: FileBag, opts: OciReadOptions): Descriptor {
  const source = `the OCI layout ${bag.label}`;
  if (opts.refName !== undefined) {
    const found = index.manifests.find((d) => d.annotations?.[ANNOTATION_REF_NAME] === opts.refName);
    if (!found) {
      const refs = index.manifests.map((d) => d.annotations?.[ANNOTATION_REF_NAME]).filter((r): r is string => r !== undefined);
      throw new ImageNotFoundError(`${source} has no image with ref name "${opts.refName}"; it has: ${refs.length > 0 ? refs.join(", ") : "no named images"}`);
    }
    return found;
  }
  const candidates = index.manifests.map((d) => ({ desc: d, repoTags: repoTagsOf(d), untaggedLabel: entryLabel(d) }));
  const pick = opts.pick;
  if (pick !== undefined && !candidates.some((c) => matchesRepoTag(c.repoTags, pick))) {
    // No entry carries that name; it may be a bare ref name ("latest", "base").
    const byRef = candidates.find((c) => c.desc.annotations?.[ANNOTATION_REF_NAME] === pick);
    if (byRef) return byRef.desc;
  }
  return pickCandidate(candidates, opts.pick, source).desc;
}

function wantedPlatform(opts: OciReadOptions): Platform {
  if (opts.platform === undefined) return hostPlatform();
  const p = parsePlatform(opts.platform);
  if (!p) throw new UnsupportedError(`the platform "${opts.platform}" is not OS/ARCH[/VARIANT], e.g. linux/arm64`);
  return p;
}

function isIndexJson(desc: Descriptor, json: Record<string, unknown>): boolean {
  return isIndexMediaType(desc.mediaType) || isIndexMediaType(json["mediaType"] as string | undefined)
    || (Array.isArray(json["manifests"]) && json["config"] === undefined);
}

/** Follows nested indexes down to one image manifest, picking the wanted platform at each. */
async function resolveManifest(bag: FileBag, top: Descriptor, opts: OciReadOptions): Promise<{ desc: Descriptor; json: Record<string, unknown> }> {
  let desc = top;
  for (let depth = 0; depth <= MAX_INDEX_DEPTH; depth++) {
    const json = await readJsonBlob(bag, desc, isIndexMediaType(desc.mediaType) ? "the image index" : "the manifest");
    if (!isIndexJson(desc, json)) return { desc, json };
    const what = `the image index ${bag.describe(blobPath(desc.digest))}`;
    const index = parseIndex(json, what);
    const want = wantedPlatform(opts);
    const match = index.manifests.find((d) => platformMatches(d.platform, want));
    if (!match) {
      const have = index.manifests.map((d) => (d.platform ? formatPlatform(d.platform) : "unknown")).join(", ");
      throw new ImageNotFoundError(`${what} has no image for ${formatPlatform(want)}; it has: ${have} (choose one with --platform)`);
    }
    desc = match;
  }
  throw new FormatError(`the image indexes in ${bag.label} nest deeper than ${MAX_INDEX_DEPTH}; the layout is malformed`);
}

function parseManifest(json: Record<string, unknown>, what: string): ManifestJson {
  if (json["schemaVersion"] === 1) throw new UnsupportedError(`${what} is a Docker schema 1 manifest, which gantry does not read; convert the image with a newer tool`);
  if (json["schemaVersion"] !== 2) throw new FormatError(`${what} is not a schemaVersion 2 image manifest`);
  const config = parseDescriptor(json["config"], `the config descriptor of ${what}`);
  if (!Array.isArray(json["layers"])) throw new FormatError(`${what} has no "layers" list`);
  const layers = json["layers"].map((d, i) => parseDescriptor(d, `layer ${i + 1} of ${what}`));
  return { ...(json as unknown as ManifestJson), config, layers };
}

async function readLayers(bag: FileBag, manifest: ManifestJson, config: ImageConfigJson, what: string, signal?: AbortSignal): Promise<Layer[]> {
  const diffIds = config.rootfs.diff_ids;
  if (manifest.layers.length !== diffIds.length) {
    throw new FormatError(`${what} lists ${manifest.layers.length} layers, but its config's rootfs.diff_ids has ${diffIds.length}; the layout is damaged`);
  }
  const layers: Layer[] = [];
  for (const [i, desc] of manifest.layers.entries()) {
    const name = blobPath(desc.digest);
    const describe = `layer ${i + 1} of ${manifest.layers.length} (${bag.describe(name)})`;
    if (!(await bag.has(name))) {
      const foreign = desc.urls !== undefined && desc.urls.length > 0;
      throw new FormatError(`${describe} is missing${foreign ? " (a foreign layer, kept at its URLs)" : ""}; the layout is incomplete`);
    }
    const stored = await bag.size(name);
    if (stored !== desc.size) throw new DigestMismatchError(`${describe} is ${stored} bytes, not the ${desc.size} its descriptor states`);
    const compression = compressionOfMediaType(desc.mediaType ?? "");
    layers.push(await bagLayer({
      bag, name, diffId: diffIds[i]!, digest: desc.digest, describe,
      ...(compression !== undefined ? { compression } : {}),
      ...(signal !== undefined ? { signal } : {}),
    }));
  }
  return layers;
}

async function readImageAt(bag: FileBag, entry: Descriptor, opts: OciReadOptions): Promise<Image> {
  const { desc, json } = await resolveManifest(bag, entry, opts);
  const what = `the manifest ${bag.describe(blobPath(desc.digest))}`;
  const manifest = parseManifest(json, what);
  const configBytes = await readBlob(bag, manifest.config, "the image config");
  const config = parseImageConfig(configBytes, `the image config ${bag.describe(blobPath(manifest.config.digest))}`);
  const layers = await readLayers(bag, manifest, config, what, opts.signal);
  return { configBytes, configDigest: manifest.config.digest, config, layers, repoTags: repoTagsOf(entry) };
}

export async function readOciLayout(bag: FileBag, opts: OciReadOptions = {}): Promise<Image> {
  const index = await readTopIndex(bag);
  return readImageAt(bag, selectEntry(index, bag, opts), opts);
}

/** One summary per index entry (a multi-platform entry resolved to the host's platform). */
export async function listOciLayout(bag: FileBag, opts: Pick<OciReadOptions, "platform"> = {}): Promise<ImageSummary[]> {
  const out: ImageSummary[] = [];
  for (const entry of (await readTopIndex(bag)).manifests) {
    const { desc, json } = await resolveManifest(bag, entry, opts);
    const manifest = parseManifest(json, `the manifest ${bag.describe(blobPath(desc.digest))}`);
    out.push({ repoTags: repoTagsOf(entry), configDigest: manifest.config.digest });
  }
  return out;
}
