import type { Digest } from "../../model/digest.js";
import { FormatError } from "../../model/errors.js";
import type { Image, ImageSummary, Layer } from "../../model/image.js";
import { makeLayer } from "../../image/layer.js";
import type { HistoryEntry, ImageConfigJson } from "../../model/oci.js";
import { measureEntry, sniffEntry } from "../../archive/bag-layer.js";
import { isRecord } from "../../image/parse.js";
import { imageFromParts } from "../../image/image.js";
import type { FileBag } from "../../archive/file-bag.js";
import { pickCandidate } from "../pick.js";
import { LEGACY_REPOSITORIES } from "./names.js";
import type { DockerArchiveSelection } from "./read.js";

/**
 * The legacy `docker save` format (docker < 1.10): no manifest.json, only `repositories`
 * (`{NAME: {TAG: ID}}`) and one `ID/` directory per layer with `json` (v1 metadata,
 * `parent` pointing down the chain) and `layer.tar`. The image config is synthesized
 * from the top layer's json, with diff_ids found by hashing each uncompressed layer.
 */

const V1_ID = /^[0-9a-f]{64}$/;
/** Longer parent chains than this are loops or garbage; docker capped images at 127 layers. */
const MAX_CHAIN = 1000;


interface TaggedId {
  repoTags: string[];
  untaggedLabel: string;
  id: string;
}

/** One candidate per top layer ID, with every NAME:TAG that points at it, in file order. */
async function readRepositories(bag: FileBag): Promise<TaggedId[]> {
  const what = bag.describe(LEGACY_REPOSITORIES);
  const json = await bag.readJson(LEGACY_REPOSITORIES);
  const bad = (why: string): FormatError => new FormatError(`${what} is malformed: ${why}; the archive is damaged`);
  if (!isRecord(json)) throw bad("it is not a JSON object");
  const byId = new Map<string, TaggedId>();
  for (const [name, tags] of Object.entries(json)) {
    if (!isRecord(tags)) throw bad(`"${name}" does not map tags to IDs`);
    for (const [tag, id] of Object.entries(tags)) {
      if (typeof id !== "string" || !V1_ID.test(id)) throw bad(`${name}:${tag} points at "${String(id)}", which is not a layer ID`);
      const entry = byId.get(id) ?? { repoTags: [], untaggedLabel: id, id };
      entry.repoTags.push(`${name}:${tag}`);
      byId.set(id, entry);
    }
  }
  return [...byId.values()];
}

/** The v1 json of each layer from the root to `topId`. */
async function readChain(bag: FileBag, topId: string): Promise<{ id: string; json: Record<string, unknown> }[]> {
  const chain: { id: string; json: Record<string, unknown> }[] = [];
  const seen = new Set<string>();
  for (let id: string | undefined = topId; id !== undefined;) {
    if (seen.has(id) || chain.length >= MAX_CHAIN) {
      throw new FormatError(`the parent chain of layer ${topId} in ${bag.label} loops back to ${id}; the archive is damaged`);
    }
    seen.add(id);
    const json = await bag.readJson(`${id}/json`);
    if (!isRecord(json)) throw new FormatError(`${bag.describe(`${id}/json`)} is not a JSON object; the archive is damaged`);
    chain.push({ id, json });
    const parent = json["parent"];
    if (parent !== undefined && parent !== "" && (typeof parent !== "string" || !V1_ID.test(parent))) {
      throw new FormatError(`${bag.describe(`${id}/json`)} has a parent "${String(parent)}" that is not a layer ID; the archive is damaged`);
    }
    id = typeof parent === "string" && parent !== "" ? parent : undefined;
  }
  return chain.reverse();
}

function historyOf(json: Record<string, unknown>): HistoryEntry {
  const entry: HistoryEntry = {};
  if (typeof json["created"] === "string") entry.created = json["created"];
  if (typeof json["author"] === "string") entry.author = json["author"];
  const cc = json["container_config"];
  const cmd = isRecord(cc) ? cc["Cmd"] : undefined;
  if (Array.isArray(cmd) && cmd.every((c) => typeof c === "string")) entry.created_by = cmd.join(" ");
  if (typeof json["comment"] === "string") entry.comment = json["comment"];
  return entry;
}

/** A v2 image config from the top layer's v1 json: what docker itself derived on load. */
function synthesizeConfig(chain: { json: Record<string, unknown> }[], diffIds: Digest[]): ImageConfigJson {
  const top = chain[chain.length - 1]!.json;
  const runtime = isRecord(top["config"]) ? top["config"] : isRecord(top["container_config"]) ? top["container_config"] : undefined;
  // Keys in a fixed order, so the same archive always gives the same config digest.
  const config: ImageConfigJson = {
    architecture: typeof top["architecture"] === "string" ? top["architecture"] : "amd64",
    os: typeof top["os"] === "string" ? top["os"] : "linux",
    ...(typeof top["created"] === "string" ? { created: top["created"] } : {}),
    ...(typeof top["author"] === "string" ? { author: top["author"] } : {}),
    ...(runtime ? { config: runtime } : {}),
    ...(isRecord(top["container_config"]) ? { container_config: top["container_config"] } : {}),
    rootfs: { type: "layers", diff_ids: diffIds },
  };
  config.history = chain.map((l) => historyOf(l.json));
  return config;
}

async function readLegacyImage(bag: FileBag, picked: TaggedId, signal?: AbortSignal): Promise<Image> {
  const chain = await readChain(bag, picked.id);
  const layers: Layer[] = [];
  for (const [i, { id }] of chain.entries()) {
    const name = `${id}/layer.tar`;
    const describe = `layer ${i + 1} of ${chain.length} (${bag.describe(name)})`;
    const compression = await sniffEntry(bag, name);
    const { digest, diffId, size } = await measureEntry(bag, name, compression, describe, signal);
    layers.push(makeLayer({ digest, diffId, size, compression, describe, openRaw: (s?: AbortSignal) => bag.open(name, s) }));
  }
  const configBytes = Buffer.from(JSON.stringify(synthesizeConfig(chain, layers.map((l) => l.diffId))));
  // Parsed like any config: what the v1 json gave it must have the types other readers expect.
  return imageFromParts({ configBytes, layers, repoTags: picked.repoTags }, `the image config made from ${bag.describe(`${picked.id}/json`)}`);
}

/**
 * The image `sel` picks from a legacy archive, with its config synthesized and every layer read once
 * for its diff_id. Throws an ImageNotFoundError when no image has the name asked for, an
 * InvalidReferenceError when none is named and there are several, a FormatError for a damaged archive.
 */
export async function readDockerLegacy(bag: FileBag, sel: DockerArchiveSelection = {}, signal?: AbortSignal): Promise<Image> {
  const picked = pickCandidate(await readRepositories(bag), sel.pick, `the legacy docker archive ${bag.label}`, sel.firstOfMany);
  return readLegacyImage(bag, picked, signal);
}

/** Listing a legacy archive means synthesizing each config, which reads every layer once. */
export async function listDockerLegacy(bag: FileBag, signal?: AbortSignal): Promise<ImageSummary[]> {
  const out: ImageSummary[] = [];
  for (const candidate of await readRepositories(bag)) {
    const image = await readLegacyImage(bag, candidate, signal);
    out.push({ repoTags: image.repoTags, digest: image.digest, mediaType: image.mediaType });
  }
  return out;
}
