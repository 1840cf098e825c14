import { sha256, type Digest } from "../../model/digest.js";
import { FormatError } from "../../model/errors.js";
import type { Image, ImageSummary, Layer } from "../../model/image.js";
import { isIndexMediaType } from "../../model/mediatypes.js";
import type { DockerArchiveManifestEntry } from "../../model/oci.js";
import { imageFromParts, readDescribed, withRepoTags } from "../../image/image.js";
import { isRecord, parseImageConfig } from "../../image/parse.js";
import { bagLayer, sniffEntry } from "../../archive/bag-layer.js";
import type { FileBag } from "../../archive/file-bag.js";
import { pickCandidate } from "../pick.js";
import { OCI_LAYOUT_FILE } from "../oci/names.js";
import { layoutReader, readTopIndex } from "../oci/read.js";
import { DOCKER_MANIFEST } from "./names.js";

/**
 * docker-archive: `manifest.json` lists each image's config file and layer files, with
 * whatever naming its writer chose: `HEX.tar` + `ID/layer.tar` symlinks (skopeo),
 * `HEX/layer.tar` + `HEX.json` (docker ≤24, nixpkgs), `blobs/sha256/HEX` (docker 25+),
 * `sha256:HEX` gzip files (nixpkgs 2017). Layer files may be gzip, zstd or plain.
 *
 * An archive that is also an OCI layout (docker 25+, and what gantry builds) holds the
 * image's real manifest: it is read as stored, so its digest is the one the image has
 * everywhere. Otherwise the archive holds no manifest and one is made for the image.
 */

/** Which image of a docker-archive to read; with several images and neither set, reading refuses (InvalidReferenceError). */
export interface DockerArchiveSelection {
  /** NAME[:TAG] of one image. */
  pick?: string | undefined;
  /** Several images and no name: take the first rather than refuse. */
  firstOfMany?: boolean | undefined;
}

/** `HEX.tar`, `HEX.json`, `sha256:HEX`, `blobs/sha256/HEX`: a file name that states a digest. */
const DIGEST_NAME = /(?:^|\/)(?:sha256:)?([0-9a-f]{64})(?:\.tar|\.json)?$/;

/** The digest a file's name claims for its bytes; only a claim, checked when the bytes are read. */
export function digestClaimedByName(name: string): Digest | undefined {
  const m = DIGEST_NAME.exec(name);
  return m ? `sha256:${m[1]!}` : undefined;
}

function parseManifest(json: unknown, what: string): DockerArchiveManifestEntry[] {
  const bad = (why: string): FormatError => new FormatError(`${what} is malformed: ${why}; the archive is damaged or not a docker-archive`);
  if (!Array.isArray(json)) throw bad("it is not a JSON list");
  return json.map((entry: unknown, i) => {
    if (!isRecord(entry)) throw bad(`entry ${i + 1} is not an object`);
    const { Config, Layers, RepoTags } = entry;
    if (typeof Config !== "string" || Config === "") throw bad(`entry ${i + 1} has no "Config" file name`);
    if (!Array.isArray(Layers) || !Layers.every((l) => typeof l === "string")) throw bad(`entry ${i + 1} has no "Layers" list of file names`);
    if (RepoTags !== undefined && RepoTags !== null && !(Array.isArray(RepoTags) && RepoTags.every((t) => typeof t === "string"))) {
      throw bad(`entry ${i + 1} has a "RepoTags" that is not a list of names`);
    }
    return { Config, Layers: Layers as string[], RepoTags: (RepoTags ?? null) as string[] | null };
  });
}

async function readManifest(bag: FileBag): Promise<DockerArchiveManifestEntry[]> {
  return parseManifest(await bag.readJson(DOCKER_MANIFEST), bag.describe(DOCKER_MANIFEST));
}

/**
 * The config's bytes and digest. The manifest names the config by path, and its digest is
 * what its bytes hash to, as docker and skopeo read it; a name that states a digest is
 * trusted only in the layout part of an archive (see `storedManifest`).
 */
async function readConfig(bag: FileBag, name: string): Promise<{ bytes: Buffer; digest: Digest }> {
  const bytes = await bag.readBytes(name);
  return { bytes, digest: sha256(bytes) };
}

async function readLayers(bag: FileBag, entry: DockerArchiveManifestEntry, diffIds: readonly Digest[], signal?: AbortSignal): Promise<Layer[]> {
  if (entry.Layers.length !== diffIds.length) {
    throw new FormatError(`${bag.describe(DOCKER_MANIFEST)} lists ${entry.Layers.length} layers for ${entry.Config}, but its rootfs.diff_ids has ${diffIds.length}; the archive is damaged`);
  }
  const layers: Layer[] = [];
  for (const [i, name] of entry.Layers.entries()) {
    // A file's name states nothing: a compressed layer's digest is what its bytes hash to
    // (bagLayer hashes it once), as docker load and skopeo read it; an uncompressed one is its diff_id.
    layers.push(await bagLayer({
      bag, name, diffId: diffIds[i]!, compression: await sniffEntry(bag, name),
      ...(signal !== undefined ? { signal } : {}),
      describe: `layer ${i + 1} of ${entry.Layers.length} (${bag.describe(name)})`,
    }));
  }
  return layers;
}

/**
 * The manifest the archive's OCI layout stores for `entry`, if it is also a layout: an
 * index.json entry whose manifest names the same config and layer files by digest.
 */
async function storedManifest(bag: FileBag, entry: DockerArchiveManifestEntry, configDigest: Digest, signal?: AbortSignal): Promise<Image | undefined> {
  if (!(await bag.has(OCI_LAYOUT_FILE))) return undefined;
  const layerDigests = entry.Layers.map(digestClaimedByName);
  if (digestClaimedByName(entry.Config) !== configDigest || layerDigests.some((d) => d === undefined)) return undefined;
  const reader = layoutReader(bag);
  for (const desc of await readTopIndex(bag)) {
    if (isIndexMediaType(desc.mediaType)) continue;
    const doc = await readDescribed(reader, desc, entry.RepoTags ?? [], signal).catch(() => undefined);
    if (doc?.kind !== "image" || doc.configDigest !== configDigest) continue;
    if (doc.layers.length === layerDigests.length && doc.layers.every((l, i) => l.digest === layerDigests[i])) return doc;
  }
  return undefined;
}

function candidates(entries: DockerArchiveManifestEntry[]): (DockerArchiveManifestEntry & { repoTags: string[]; untaggedLabel: string })[] {
  return entries.map((e) => ({ ...e, repoTags: e.RepoTags ?? [], untaggedLabel: e.Config }));
}

async function readEntry(bag: FileBag, entry: DockerArchiveManifestEntry, signal?: AbortSignal): Promise<Image> {
  const repoTags = entry.RepoTags ?? [];
  const { bytes, digest } = await readConfig(bag, entry.Config);
  const stored = await storedManifest(bag, entry, digest, signal);
  if (stored) return withRepoTags(stored, repoTags);
  const what = `the image config ${bag.describe(entry.Config)}`;
  const config = parseImageConfig(bytes, what);
  const layers = await readLayers(bag, entry, config.rootfs.diff_ids, signal);
  return imageFromParts({ configBytes: bytes, config, layers, repoTags }, what);
}

/**
 * The image `sel` picks from a docker-archive with a manifest.json (the only one, or by NAME[:TAG]).
 * Throws FormatError for an archive with no image, InvalidReferenceError for several and no name
 * (unless `firstOfMany`), ImageNotFoundError for a name it does not hold.
 */
export async function readDockerArchive(bag: FileBag, sel: DockerArchiveSelection = {}, signal?: AbortSignal): Promise<Image> {
  const entry = pickCandidate(candidates(await readManifest(bag)), sel.pick, `the docker-archive ${bag.label}`, sel.firstOfMany);
  return readEntry(bag, entry, signal);
}

/** One summary per image of the archive (layers are not read, but compressed ones without a stated digest are hashed). */
export async function listDockerArchive(bag: FileBag, signal?: AbortSignal): Promise<ImageSummary[]> {
  const out: ImageSummary[] = [];
  for (const entry of await readManifest(bag)) {
    const image = await readEntry(bag, entry, signal);
    out.push({ repoTags: image.repoTags, digest: image.digest, mediaType: image.mediaType });
  }
  return out;
}
