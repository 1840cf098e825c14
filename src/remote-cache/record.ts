import { gunzipSync, gzipSync } from "node:zlib";
import { isDigest, sha256, type Digest } from "../model/digest.js";
import { FormatError } from "../model/errors.js";
import { MediaType, compressionOfMediaType, layerMediaType, type Compression } from "../model/mediatypes.js";
import { factRecord, factsFromRecords, type LayerFacts } from "../layer/apply-layer.js";

/**
 * One layer of the registry cache, as the registry holds it: an OCI artifact manifest,
 * tagged `gantry-layer-KEY` (KEY: the layer's 64-hex content key), whose one layer is the
 * packed layer blob and whose config is the layer's facts (what each entry says: path,
 * type, mode, owner, link, content digest), gzipped JSON:
 *
 *     {
 *       "schemaVersion": 2,
 *       "mediaType": "application/vnd.oci.image.manifest.v1+json",
 *       "artifactType": "application/vnd.gantry.layer-cache.v1+json",
 *       "config": { "mediaType": "application/vnd.gantry.layer-facts.v1+json+gzip", "digest": …, "size": … },
 *       "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": …, "size": …,
 *                    "annotations": { "org.gantry.layer.diff-id": "sha256:…" } }],
 *       "annotations": { "org.gantry.cache.key": KEY, "org.gantry.cache.format": "gantry layer cache 1" }
 *     }
 *
 * The facts let a machine that takes the layer from the cache compare the layers above it
 * without downloading it. The bytes of a record depend on its content alone (fixed key
 * order, no time), so two machines recording one key write the same manifest.
 */

/** The artifactType of a record's manifest. */
export const RECORD_ARTIFACT_TYPE = "application/vnd.gantry.layer-cache.v1+json";
/** The media type of a record's config: the layer's facts, gzipped JSON. */
export const FACTS_MEDIA_TYPE = "application/vnd.gantry.layer-facts.v1+json+gzip";
/** The format annotation of a record; a record in any other format is not read. */
export const RECORD_FORMAT = "gantry layer cache 1";
const KEY_ANNOTATION = "org.gantry.cache.key";
const FORMAT_ANNOTATION = "org.gantry.cache.format";
const DIFF_ID_ANNOTATION = "org.gantry.layer.diff-id";
/** Facts larger than this are not read from a record (a 100,000-entry layer's are a few MB). */
export const MAX_FACTS_BYTES = 64 * 1024 * 1024;

/** The tag a key's record is stored under: one tag per key, so no writer ever edits another's record. */
export function recordTag(keyHex: string): string {
  return `gantry-layer-${keyHex}`;
}

/** What a record says: the content key it is stored under, the packed layer blob, and the facts blob. */
export interface CacheRecord {
  /** The layer's content key, 64 hex digits. */
  key: string;
  layer: { digest: Digest; size: number; diffId: Digest; compression: Compression };
  facts: { digest: Digest; size: number };
}

/** The record's manifest bytes. */
export function recordManifest(record: CacheRecord): Buffer {
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    artifactType: RECORD_ARTIFACT_TYPE,
    config: { mediaType: FACTS_MEDIA_TYPE, digest: record.facts.digest, size: record.facts.size },
    layers: [{
      mediaType: layerMediaType(record.layer.compression, "oci"),
      digest: record.layer.digest,
      size: record.layer.size,
      annotations: { [DIFF_ID_ANNOTATION]: record.layer.diffId },
    }],
    annotations: { [KEY_ANNOTATION]: record.key, [FORMAT_ANNOTATION]: RECORD_FORMAT },
  };
  return Buffer.from(JSON.stringify(manifest));
}

/**
 * A record read back, checked field by field: what is not a record of `key` in this format
 * is a FormatError naming `where` (the caller falls back to building the layer).
 */
export function parseRecord(bytes: Buffer, key: string, where: string): CacheRecord {
  const bad = (why: string): FormatError => new FormatError(`the cache record ${where} ${why}`);
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString("utf8"));
  } catch {
    throw bad("is not JSON");
  }
  const m = doc as {
    artifactType?: unknown; config?: { mediaType?: unknown; digest?: unknown; size?: unknown };
    layers?: Array<{ mediaType?: unknown; digest?: unknown; size?: unknown; annotations?: Record<string, unknown> }>;
    annotations?: Record<string, unknown>;
  };
  if (m === null || typeof m !== "object" || m.artifactType !== RECORD_ARTIFACT_TYPE) throw bad(`is not a gantry layer cache record (artifactType ${JSON.stringify(m?.artifactType)})`);
  if (m.annotations?.[FORMAT_ANNOTATION] !== RECORD_FORMAT) throw bad(`is in another format (${JSON.stringify(m.annotations?.[FORMAT_ANNOTATION])}, not "${RECORD_FORMAT}")`);
  if (m.annotations?.[KEY_ANNOTATION] !== key) throw bad("is recorded for another key");
  const config = m.config;
  if (config?.mediaType !== FACTS_MEDIA_TYPE || !isDigest(config.digest) || !isSize(config.size) || config.size > MAX_FACTS_BYTES) throw bad("has no facts blob gantry can read");
  if (!Array.isArray(m.layers) || m.layers.length !== 1) throw bad("does not name exactly one layer");
  const layer = m.layers[0]!;
  const compression = typeof layer.mediaType === "string" ? compressionOfMediaType(layer.mediaType) : undefined;
  const diffId = layer.annotations?.[DIFF_ID_ANNOTATION];
  if (compression === undefined || !isDigest(layer.digest) || !isSize(layer.size) || !isDigest(diffId)) throw bad("names its layer with a media type, digest, size or diff_id gantry cannot use");
  if (compression === "none" && diffId !== layer.digest) throw bad("says an uncompressed layer's diff_id differs from its digest");
  return { key, layer: { digest: layer.digest, size: layer.size, diffId, compression }, facts: { digest: config.digest, size: config.size } };
}

function isSize(n: unknown): n is number {
  return Number.isSafeInteger(n) && (n as number) >= 0;
}

/** The facts blob: the fact records as JSON, gzipped at a fixed level. */
export function factsBlob(facts: LayerFacts): { bytes: Buffer; digest: Digest } {
  const bytes = gzipSync(Buffer.from(JSON.stringify(facts.map(factRecord))), { level: 6 });
  return { bytes, digest: sha256(bytes) };
}

/** Facts from a facts blob (already checked against its digest); a FormatError naming `where` when they are not facts. */
export function readFactsBlob(bytes: Buffer, where: string): LayerFacts {
  let facts: LayerFacts | undefined;
  try {
    facts = factsFromRecords(JSON.parse(gunzipSync(bytes, { maxOutputLength: MAX_FACTS_BYTES * 8 }).toString("utf8")));
  } catch {
    facts = undefined;
  }
  if (facts === undefined) throw new FormatError(`the facts ${where} are not gantry layer facts`);
  return facts;
}
