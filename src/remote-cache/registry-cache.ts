import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { sha256 } from "../model/digest.js";
import { GantryError, ImageNotFoundError, InvalidReferenceError } from "../model/errors.js";
import type { Layer } from "../model/image.js";
import { MediaType } from "../model/mediatypes.js";
import type { ProgressListener } from "../model/progress.js";
import { makeLayer } from "../image/layer.js";
import type { LayerFacts } from "../layer/apply-layer.js";
import { type BlobStore, type StoredLayerBlob } from "../cache/blob-store.js";
import { RegistryClient, type ClientOptions } from "../transports/docker/client.js";
import { fetchIntoStore, fetchSmallBlob, openBlobStream, type BlobRef } from "../transports/docker/blobs.js";
import { hintsFrom, type BlobLocationBook } from "../transports/docker/blob-locations.js";
import { fetchManifest } from "../transports/docker/pull.js";
import { putManifest } from "../transports/docker/push.js";
import { hasBlob, hasManifest } from "../transports/docker/presence.js";
import { locationsOf, type LocatedLayer } from "../transports/docker/origin.js";
import { DEFAULT_CHUNK_SIZE, DEFAULT_CHUNK_THRESHOLD, pushBlob } from "../transports/docker/upload.js";
import { DOCKER_TRANSPORT, parseRegistryReference } from "../transports/docker/reference.js";
import { factsBlob, parseRecord, readFactsBlob, recordManifest, recordTag, type CacheRecord } from "./record.js";

/**
 * The registry cache: layers shared between machines through repositories of an OCI
 * registry (`--cache-from`, `--cache-to`), one record per content key (record.ts).
 *
 * Reading: a record is looked up by its tag; it must parse as a record of that key, its
 * layer blob must still be in the repository, and its facts must match their digest. A hit
 * is then either mounted by the push of the image (the output is the same registry: the
 * layer's location is remembered, and its bytes never travel) or downloaded into the local
 * store, checked against its digest and, decompressed, against its diff_id, and recorded in
 * the local index so the next build finds it there.
 *
 * Writing: after the image is written, each new layer with a key gets a record in every
 * `--cache-to` repository that has none: the layer blob (mounted from the output repository
 * when it is there), the facts blob, then the manifest under the key's tag. A tag names one
 * key and a record's bytes depend on its content alone, so concurrent writers of one key
 * write the same manifest and writers of different keys touch different tags: nothing is
 * ever read, modified and written back.
 *
 * Failures never fail a build: a repository that cannot be reached or refuses us is one
 * warning line and is left alone for the rest of the build; a record that does not verify
 * is one warning line and the layer is built.
 */

/** Faults of a cache registry are not worth the default minute of retries: the build goes on without it. */
const CACHE_RETRY = { maxTries: 2, budgetMs: 5_000, stallMs: 10_000 };

/** The repositories of the registry cache, and the registry client settings to reach them with. */
export interface RegistryCacheOptions extends ClientOptions {
  /** Repositories read from (`--cache-from`), and written to (`--cache-to`, also read). */
  from: readonly string[];
  to: readonly string[];
  /** Where blobs seen in a cache repository are remembered, so the image's push mounts them. */
  blobLocations?: BlobLocationBook | undefined;
  /** Where warnings about a failing repository, and each record written, are reported. */
  progress: ProgressListener;
}

interface CacheRepository {
  registry: string;
  repository: string;
  /** `HOST/REPO`, for messages. */
  display: string;
  client: RegistryClient;
  /** Failed once (unreachable, auth): not asked again in this build. */
  off: boolean;
}

/** A record found and checked: where it is and what it says (its facts are read when needed: facts()). */
export interface CacheHit {
  record: CacheRecord;
  registry: string;
  repository: string;
  display: string;
}

/** `docker://HOST/REPO` (the `docker://` may be left out): a repository, no tag or digest. */
function parseCacheRepository(spelled: string, flag: string, opts: ClientOptions): CacheRepository {
  const body = spelled.startsWith(DOCKER_TRANSPORT) ? spelled : `${DOCKER_TRANSPORT}${spelled}`;
  let ref;
  try {
    ref = parseRegistryReference(body);
  } catch (err) {
    throw new InvalidReferenceError(`${flag} ${spelled} is not a registry repository (${(err as Error).message}); write it as docker://HOST/REPOSITORY`);
  }
  const text = body.slice(DOCKER_TRANSPORT.length);
  const tagged = text.indexOf(":", text.lastIndexOf("/")) > text.lastIndexOf("/");
  if (ref.digest !== undefined || tagged) {
    throw new InvalidReferenceError(`${flag} ${spelled} names a tag or digest; give the repository alone (docker://HOST/REPOSITORY): gantry tags each record itself`);
  }
  return {
    registry: ref.registry, repository: ref.repository, display: `${ref.registry}/${ref.repository}`,
    client: new RegistryClient(ref.registry, { ...opts, retry: { ...CACHE_RETRY, ...opts.retry } }), off: false,
  };
}

/**
 * The registry cache of one build: looks up, fetches and writes layer records. Its methods report
 * failures as warnings and never throw; only the constructor does, for a malformed repository reference.
 */
export class RegistryLayerCache {
  private readonly readFrom: CacheRepository[];
  private readonly writeTo: CacheRepository[];
  private readonly book: BlobLocationBook;
  private readonly progress: ProgressListener;

  /** @throws InvalidReferenceError for a reference that is not a repository (checked before any work). */
  constructor(opts: RegistryCacheOptions) {
    const { from, to, blobLocations, progress, ...client } = opts;
    this.writeTo = to.map((s) => parseCacheRepository(s, "--cache-to", client));
    const reading = from.map((s) => parseCacheRepository(s, "--cache-from", client));
    // Where records are written, they are read too (the same repository once).
    for (const w of this.writeTo) if (!reading.some((r) => r.display === w.display)) reading.push(w);
    this.readFrom = reading;
    this.book = hintsFrom(blobLocations);
    this.progress = progress;
  }

  /** Whether the build records its layers anywhere (a `--cache-to` was given). */
  get writes(): boolean {
    return this.writeTo.length > 0;
  }

  private warn(repo: CacheRepository, message: string): void {
    this.progress({ step: "cache", message: `warning: the registry cache ${repo.display}: ${message}` });
  }

  /** A repository that failed as a whole (unreachable, refused) is warned about once and left alone. */
  private fail(repo: CacheRepository, err: unknown, doing: string, instead = "building the layer instead"): void {
    const message = err instanceof GantryError ? err.message : String(err);
    if (err instanceof GantryError && (err.code === "FORMAT_INVALID" || err.code === "DIGEST_MISMATCH")) {
      this.warn(repo, `${message}; ${instead}`);
      return;
    }
    repo.off = true;
    this.warn(repo, `${doing} failed (${message}); going on without it`);
  }

  /** The first record of `keyHex` that checks out, in the order the repositories were given. */
  async lookup(keyHex: string): Promise<CacheHit | undefined> {
    const tag = recordTag(keyHex);
    for (const repo of this.readFrom) {
      if (repo.off) continue;
      const where = `${repo.display}:${tag}`;
      try {
        let bytes: Buffer;
        try {
          ({ bytes } = await fetchManifest(repo.client, { registry: repo.registry, repository: repo.repository, tag }, tag, undefined, undefined, `the cache record ${where}`));
        } catch (err) {
          if (err instanceof ImageNotFoundError) continue;
          throw err;
        }
        const record = parseRecord(bytes, keyHex, where);
        if (!(await hasBlob(repo.client, repo.repository, record.layer.digest, `the layer of ${where}`))) {
          this.warn(repo, `the record ${tag} names the layer ${record.layer.digest}, which the registry no longer holds; building the layer instead`);
          continue;
        }
        await this.book.remember(repo.registry, repo.repository, record.layer.digest);
        return { record, registry: repo.registry, repository: repo.repository, display: repo.display };
      } catch (err) {
        this.fail(repo, err, `reading the record ${tag}`);
      }
    }
    return undefined;
  }

  /**
   * The facts of a hit's layer, fetched when a build needs them (a layer above it is
   * packed, or the layer is recorded elsewhere), which a build whose every layer hits never
   * does. Undefined, with a warning, when they cannot be had or are not facts: the layer is
   * then read instead.
   */
  async facts(hit: CacheHit): Promise<LayerFacts | undefined> {
    const repo = this.repositoryOf(hit);
    const where = `${hit.display}:${recordTag(hit.record.key)}`;
    try {
      const bytes = await fetchSmallBlob(repo.client, repo.repository, { ...hit.record.facts, describe: `the facts of ${where}` });
      return readFactsBlob(bytes, `of ${where}`);
    } catch (err) {
      this.fail(repo, err, `reading the facts of ${where}`, "reading the layer instead");
      return undefined;
    }
  }

  private repositoryOf(hit: CacheHit): CacheRepository {
    return this.readFrom.find((r) => r.display === hit.display)!;
  }

  private blobRef(hit: CacheHit, describe: string): BlobRef {
    return { digest: hit.record.layer.digest, size: hit.record.layer.size, describe: `${describe} (from the registry cache ${hit.display})` };
  }

  /**
   * The hit as a layer whose bytes stay in the registry until read: a push to the same
   * registry mounts it from the cache repository. Its diff_id is the record's word until
   * the blob is first downloaded (then it is checked).
   */
  remoteLayer(hit: CacheHit, describe: string): Layer {
    const repo = this.repositoryOf(hit);
    const blob = this.blobRef(hit, describe);
    const layer = makeLayer({
      ...hit.record.layer, describe: blob.describe,
      openRaw: (signal) => openBlobStream(repo.client, repo.repository, blob, signal),
    });
    const located: LocatedLayer = { ...layer, location: { registry: repo.registry, repository: repo.repository } };
    return located;
  }

  /**
   * Downloads the hit's layer into `store`, checked against its digest and, decompressed,
   * to be a tar hashing to its diff_id. Undefined (with a warning) when it does not check out or cannot be had.
   */
  async download(hit: CacheHit, store: BlobStore, describe: string): Promise<StoredLayerBlob | undefined> {
    const repo = this.repositoryOf(hit);
    const blob = this.blobRef(hit, describe);
    try {
      if ((await store.has(blob.digest)) !== blob.size) {
        await fetchIntoStore(store, blob, () => openBlobStream(repo.client, repo.repository, blob));
      }
      const stored: StoredLayerBlob = { digest: hit.record.layer.digest, diffId: hit.record.layer.diffId, size: hit.record.layer.size, compression: hit.record.layer.compression };
      // Checked whole, as any layer a writer copies (digest, decompression, tar, diff_id): from here on the cache vouches for it.
      await pipeline(await makeLayer({ ...stored, openRaw: () => store.open(stored.digest), describe: blob.describe }).open(), discardAll());
      return stored;
    } catch (err) {
      this.fail(repo, err, `fetching ${blob.digest}`);
      return undefined;
    }
  }

  /**
   * Records `layer` under `keyHex` in every `--cache-to` repository that has no record of
   * it yet: the layer blob (a mount where its location is known), the facts, the manifest.
   * The facts are asked for only when a repository lacks the record; a layer without
   * facts gets no record.
   */
  async write(keyHex: string, layer: Layer, factsOf: () => Promise<LayerFacts | undefined>, describe: string): Promise<void> {
    const tag = recordTag(keyHex);
    let blob: ReturnType<typeof factsBlob> | undefined;
    for (const repo of this.writeTo) {
      if (repo.off) continue;
      try {
        if (await hasManifest(repo.client, repo.repository, tag, `the cache record ${repo.display}:${tag}`)) continue;
        if (blob === undefined) {
          const facts = await factsOf();
          if (facts === undefined) return;
          blob = factsBlob(facts);
        }
        const facts = blob;
        const manifest = recordManifest({
          key: keyHex,
          layer: { digest: layer.digest, size: layer.size, diffId: layer.diffId, compression: layer.compression },
          facts: { digest: facts.digest, size: facts.bytes.length },
        });
        const settings = { chunkThreshold: DEFAULT_CHUNK_THRESHOLD, chunkSize: DEFAULT_CHUNK_SIZE, book: this.book };
        await pushBlob(repo.client, repo.repository, {
          digest: layer.digest, size: layer.size, locations: locationsOf(layer), describe: `${describe} for the registry cache`,
          open: (signal) => layer.open(signal),
        }, settings);
        await pushBlob(repo.client, repo.repository, {
          digest: facts.digest, size: facts.bytes.length, locations: [], describe: `the facts of ${describe}`,
          open: () => Promise.resolve(Readable.from([facts.bytes])),
        }, settings);
        await putManifest(repo.client, { registry: repo.registry, repository: repo.repository, tag }, { bytes: manifest, digest: sha256(manifest), mediaType: MediaType.ociManifest });
        this.progress({ step: "cache", message: `${describe} recorded in the registry cache ${repo.display} (${tag.slice(0, 25)}…)` });
      } catch (err) {
        this.fail(repo, err, `recording ${describe}`);
      }
    }
  }
}

function discardAll(): Writable {
  return new Writable({ write(_chunk, _enc, cb) { cb(); } });
}
