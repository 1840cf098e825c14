import type { Readable } from "node:stream";
import { sha256, type Digest } from "../model/digest.js";
import { DigestMismatchError, FormatError, ImageNotFoundError, UnsupportedError } from "../model/errors.js";
import type { Image, ImageIndex, ImageOrIndex, Layer } from "../model/image.js";
import { compressionOfMediaType, type Compression } from "../model/mediatypes.js";
import type { Descriptor, ImageConfigJson, IndexJson, ManifestJson } from "../model/oci.js";
import { makeLayer } from "./layer.js";
import { buildIndex, buildManifest, familyOf, type BuiltDocument, type ManifestFamily } from "./manifest.js";
import { parseImageConfig, parseManifestDocument } from "./parse.js";

/**
 * Images and indexes from what a transport can give, in the spirit of go-containerregistry's
 * `partial`: a transport that stores manifests implements a small BlobReader (read a
 * manifest, read a small blob, open a blob) and `readDocument` derives the rest — parsing,
 * checking every document against the digest and size its descriptor states, layers that
 * verify while they stream, index children read when asked for. A transport that stores no
 * manifest (docker-archive, the Docker engine) gives parts and gets one made
 * (`imageFromParts`).
 */

/** How an image reads the blobs of its source; each transport gives one. */
export interface BlobReader {
  /** Where a blob lives, for messages: "blobs/sha256/ab… in ./layout", "127.0.0.1:5000/app@sha256:…". */
  where(desc: Descriptor): string;
  /** The bytes of a manifest or index named by `desc`, as stored (checked by the caller). */
  readManifest(desc: Descriptor, signal?: AbortSignal): Promise<Buffer>;
  /** A small blob (a config) whole, as stored (checked by the caller). */
  readBlob(desc: Descriptor, signal?: AbortSignal): Promise<Buffer>;
  /** A layer blob's bytes as stored; the layer verifies them while they stream. */
  openBlob(desc: Descriptor, signal?: AbortSignal): Promise<Readable>;
  /** The compression of a layer whose media type does not say; without it such a layer is refused. */
  sniffLayer?(desc: Descriptor, signal?: AbortSignal): Promise<Compression>;
  /** Lets a transport add what it knows to each layer (a registry: the repository it lives in). */
  adoptLayer?(layer: Layer): Layer;
}

/** The document at the top of a reference, already read (a registry's answer to a tag). */
export interface TopDocument {
  bytes: Buffer;
  /** A descriptor's media type or a Content-Type, used when the document names none. */
  hint?: string | undefined;
  repoTags?: readonly string[];
  /** Names the document in errors. */
  what: string;
}

/** Checks small bytes against the digest and size a descriptor states. */
export function checkAgainst(bytes: Buffer, desc: Descriptor, what: string): void {
  const actual = sha256(bytes);
  if (actual !== desc.digest || bytes.length !== desc.size) {
    throw new DigestMismatchError(`${what} does not match its descriptor: expected ${desc.digest} (${desc.size} bytes), got ${actual} (${bytes.length} bytes)`);
  }
}

/** The image or index a document is, its children and blobs read through `reader` when needed. */
export async function readDocument(reader: BlobReader, top: TopDocument, signal?: AbortSignal): Promise<ImageOrIndex> {
  const doc = parseManifestDocument(top.bytes, top.hint, top.what);
  const common = { manifestBytes: top.bytes, digest: sha256(top.bytes), mediaType: doc.mediaType, repoTags: top.repoTags ?? [] };
  if (doc.kind === "index") {
    const children = new Map<Digest, Promise<ImageOrIndex>>();
    return makeIndex({ ...common, json: doc.index }, (desc, childSignal) => {
      let pending = children.get(desc.digest);
      if (pending === undefined) {
        pending = readDescribed(reader, desc, [], childSignal);
        children.set(desc.digest, pending);
        pending.catch(() => children.delete(desc.digest));
      }
      return pending;
    });
  }
  return imageOfManifest(reader, { ...common, manifest: doc.manifest }, top.what, signal);
}

/** The image or index a descriptor names, checked against the descriptor. */
export async function readDescribed(reader: BlobReader, desc: Descriptor, repoTags: readonly string[], signal?: AbortSignal): Promise<ImageOrIndex> {
  const what = `the manifest ${reader.where(desc)}`;
  const bytes = await reader.readManifest(desc, signal);
  checkAgainst(bytes, desc, what);
  return readDocument(reader, { bytes, hint: desc.mediaType, repoTags, what }, signal);
}

interface ManifestRead {
  manifestBytes: Buffer;
  digest: Digest;
  mediaType: string;
  repoTags: readonly string[];
  manifest: ManifestJson;
}

async function imageOfManifest(reader: BlobReader, read: ManifestRead, what: string, signal?: AbortSignal): Promise<Image> {
  const { manifest } = read;
  const configWhat = `the image config ${reader.where(manifest.config)}`;
  const configBytes = await reader.readBlob(manifest.config, signal);
  checkAgainst(configBytes, manifest.config, configWhat);
  const config = parseImageConfig(configBytes, configWhat);
  const diffIds = config.rootfs.diff_ids;
  if (manifest.layers.length !== diffIds.length) {
    throw new FormatError(`${what} lists ${manifest.layers.length} layers, but its config's rootfs.diff_ids has ${diffIds.length}; the image is damaged`);
  }
  const layers: Layer[] = [];
  for (const [i, desc] of manifest.layers.entries()) {
    const describe = `layer ${i + 1} of ${manifest.layers.length} (${reader.where(desc)})`;
    const compression = compressionOfMediaType(desc.mediaType ?? "") ?? await reader.sniffLayer?.(desc, signal);
    if (compression === undefined) {
      throw new UnsupportedError(`${describe} has media type "${desc.mediaType}", which is not a layer type gantry reads`);
    }
    const layer = makeLayer({
      digest: desc.digest, diffId: diffIds[i]!, size: desc.size, compression, describe,
      descriptor: desc.mediaType === undefined ? { ...desc, mediaType: "" } : desc,
      openRaw: (s?: AbortSignal) => reader.openBlob(desc, s),
    });
    layers.push(reader.adoptLayer ? reader.adoptLayer(layer) : layer);
  }
  return { kind: "image", ...read, configBytes, configDigest: manifest.config.digest, config, layers };
}

/** What imageFromParts makes an image of: the config and the layers, in the order of its rootfs.diff_ids. */
export interface ImageParts {
  /** The config exactly as it is to be stored: its sha256 becomes the config digest. */
  configBytes: Buffer;
  /** The parsed config, when the caller has it; parsed from the bytes otherwise. */
  config?: ImageConfigJson;
  layers: readonly Layer[];
  repoTags?: readonly string[];
}

/** An image whose source holds no manifest: one is made for it in `family` (OCI by default). */
export function imageFromParts(parts: ImageParts, what: string, family: ManifestFamily = "oci"): Image {
  const config = parts.config ?? parseImageConfig(parts.configBytes, what);
  const configDigest = sha256(parts.configBytes);
  const built = buildManifest({ configDigest, configBytes: parts.configBytes, layers: parts.layers }, family);
  return {
    kind: "image",
    manifestBytes: built.bytes,
    digest: built.digest,
    mediaType: built.mediaType,
    manifest: built.json,
    repoTags: parts.repoTags ?? [],
    configBytes: parts.configBytes,
    configDigest,
    config,
    layers: parts.layers,
  };
}

/**
 * The same image with a manifest made anew: in another family, or over other layers (the
 * same diff_ids, stored otherwise, e.g. gzipped for a registry). Its family stays unless
 * another is asked for.
 */
export function remadeImage(image: Image, change: { family?: ManifestFamily; layers?: readonly Layer[] }): Image {
  const family = change.family ?? familyOf(image.mediaType);
  return imageFromParts({
    configBytes: image.configBytes, config: image.config, layers: change.layers ?? image.layers, repoTags: image.repoTags,
  }, "the image config", family);
}

/** The same document known by other names. */
export function withRepoTags<T extends ImageOrIndex>(doc: T, repoTags: readonly string[]): T {
  return { ...doc, repoTags };
}

interface IndexParts {
  manifestBytes: Buffer;
  digest: Digest;
  mediaType: string;
  repoTags: readonly string[];
  json: IndexJson;
}

/** The one way an ImageIndex is made: its document, and how a child is loaded. */
function makeIndex(parts: IndexParts, load: (desc: Descriptor, signal?: AbortSignal) => Promise<ImageOrIndex>): ImageIndex {
  const byDigest = async <K extends ImageOrIndex["kind"]>(digest: Digest, kind: K, signal?: AbortSignal): Promise<Extract<ImageOrIndex, { kind: K }>> => {
    const desc = parts.json.manifests.find((d) => d.digest === digest);
    if (!desc) throw new ImageNotFoundError(`the index ${parts.digest} has no entry ${digest}`);
    const child = await load(desc, signal);
    if (child.kind !== kind) throw new FormatError(`the entry ${digest} of the index ${parts.digest} is an ${child.kind}, not an ${kind}`);
    return child as Extract<ImageOrIndex, { kind: K }>;
  };
  return {
    kind: "index",
    manifestBytes: parts.manifestBytes,
    digest: parts.digest,
    mediaType: parts.mediaType,
    repoTags: parts.repoTags,
    indexManifest: parts.json,
    manifests: parts.json.manifests,
    child: load,
    image: (digest, signal) => byDigest(digest, "image", signal),
    index: (digest, signal) => byDigest(digest, "index", signal),
  };
}

/** An index made here over documents in hand (a conversion), its children served from memory. */
export function indexOfDocuments(built: BuiltDocument<IndexJson>, children: readonly ImageOrIndex[], repoTags: readonly string[]): ImageIndex {
  const byDigest = new Map(children.map((c) => [c.digest, c]));
  return makeIndex({ manifestBytes: built.bytes, digest: built.digest, mediaType: built.mediaType, repoTags, json: built.json }, async (desc) => {
    const found = byDigest.get(desc.digest);
    if (!found) throw new ImageNotFoundError(`the index ${built.digest} has no entry ${desc.digest}`);
    return found;
  });
}

/**
 * The document in manifest family `family` (for a destination, or `--format`): an image
 * gets a manifest made anew when its family differs; an index gets its children converted
 * and is made anew when any changed. Documents already in the family are kept as they are.
 */
export async function convertDocument(doc: ImageOrIndex, family: ManifestFamily, signal?: AbortSignal): Promise<ImageOrIndex> {
  if (doc.kind === "image") return familyOf(doc.mediaType) === family ? doc : remadeImage(doc, { family });
  const children: ImageOrIndex[] = [];
  for (const desc of doc.manifests) children.push(await convertDocument(await doc.child(desc, signal), family, signal));
  const descriptors = doc.manifests.map((d, i) => {
    const c = children[i]!;
    return c.digest === d.digest ? d : { ...d, mediaType: c.mediaType, digest: c.digest, size: c.manifestBytes.length };
  });
  if (familyOf(doc.mediaType) === family && descriptors.every((d, i) => d === doc.manifests[i])) return doc;
  return indexOfDocuments(buildIndex(descriptors, family, doc.indexManifest.annotations), children, doc.repoTags);
}
