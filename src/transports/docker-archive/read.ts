import { sha256, type Digest } from "../../model/digest.js";
import { DigestMismatchError, FormatError } from "../../model/errors.js";
import type { Image, ImageSummary, Layer } from "../../model/image.js";
import type { DockerArchiveManifestEntry } from "../../model/oci.js";
import { bagLayer, sniffEntry } from "../../archive/bag-layer.js";
import { isRecord, parseImageConfig } from "../../image/config-json.js";
import type { FileBag } from "../../archive/file-bag.js";
import { pickCandidate } from "../pick.js";

/**
 * docker-archive: `manifest.json` lists each image's config file and layer files, with
 * whatever naming its writer chose: `HEX.tar` + `ID/layer.tar` symlinks (skopeo),
 * `HEX/layer.tar` + `HEX.json` (docker ≤24, nixpkgs), `blobs/sha256/HEX` (docker 25+),
 * `sha256:HEX` gzip files (nixpkgs 2017). Layer files may be gzip, zstd or plain.
 */

export const DOCKER_MANIFEST = "manifest.json";

export interface DockerArchiveReadOptions {
  /** NAME[:TAG] of one image; the first image when absent. */
  pick?: string;
  signal?: AbortSignal;
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

/** The config's bytes and digest, checked against the digest its file name states. */
async function readConfig(bag: FileBag, name: string): Promise<{ bytes: Buffer; digest: Digest }> {
  const bytes = await bag.readBytes(name);
  const digest = sha256(bytes);
  const claimed = digestClaimedByName(name);
  if (claimed !== undefined && claimed !== digest) {
    throw new DigestMismatchError(`the image config ${bag.describe(name)} does not match its digest: expected ${claimed}, got ${digest}`);
  }
  return { bytes, digest };
}

async function readLayers(bag: FileBag, entry: DockerArchiveManifestEntry, diffIds: readonly Digest[], signal?: AbortSignal): Promise<Layer[]> {
  if (entry.Layers.length !== diffIds.length) {
    throw new FormatError(`${bag.describe(DOCKER_MANIFEST)} lists ${entry.Layers.length} layers for ${entry.Config}, but its rootfs.diff_ids has ${diffIds.length}; the archive is damaged`);
  }
  const layers: Layer[] = [];
  for (const [i, name] of entry.Layers.entries()) {
    const diffId = diffIds[i]!;
    const compression = await sniffEntry(bag, name);
    // A compressed file named by its diff_id (not its own digest) must be hashed to learn its digest.
    const claimed = digestClaimedByName(name);
    const digest = compression !== "none" && claimed !== undefined && claimed !== diffId ? claimed : undefined;
    layers.push(await bagLayer({
      bag, name, diffId, compression,
      ...(digest !== undefined ? { digest } : {}),
      ...(signal !== undefined ? { signal } : {}),
      describe: `layer ${i + 1} of ${entry.Layers.length} (${bag.describe(name)})`,
    }));
  }
  return layers;
}

function candidates(entries: DockerArchiveManifestEntry[]): (DockerArchiveManifestEntry & { repoTags: string[]; untaggedLabel: string })[] {
  return entries.map((e) => ({ ...e, repoTags: e.RepoTags ?? [], untaggedLabel: e.Config }));
}

export async function readDockerArchive(bag: FileBag, opts: DockerArchiveReadOptions = {}): Promise<Image> {
  const entry = pickCandidate(candidates(await readManifest(bag)), opts.pick, `the docker-archive ${bag.label}`);
  const { bytes, digest } = await readConfig(bag, entry.Config);
  const config = parseImageConfig(bytes, `the image config ${bag.describe(entry.Config)}`);
  const layers = await readLayers(bag, entry, config.rootfs.diff_ids, opts.signal);
  return { configBytes: bytes, configDigest: digest, config, layers, repoTags: entry.repoTags };
}

export async function listDockerArchive(bag: FileBag): Promise<ImageSummary[]> {
  const summaries: ImageSummary[] = [];
  for (const entry of await readManifest(bag)) {
    summaries.push({ repoTags: entry.RepoTags ?? [], configDigest: (await readConfig(bag, entry.Config)).digest });
  }
  return summaries;
}
