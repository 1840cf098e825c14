import type { Layer } from "../model/image.js";
import type { ProgressListener } from "../model/progress.js";
import { storedLayer, type BlobStore } from "../cache/blob-store.js";
import type { LayerIndex, IndexKey } from "../cache/layer-index.js";
import type { Digest } from "../model/digest.js";
import type { FactsStore } from "../layer/merged-tree.js";
import type { BlobLocationBook } from "../transports/docker/blob-locations.js";
import type { ImageReference } from "../transports/reference.js";
import type { AccessOptions } from "../transports/transport.js";
import { RegistryLayerCache, type CacheHit } from "../remote-cache/registry-cache.js";

/**
 * The build's side of the registry cache (remote-cache/): which repositories to use, when
 * a hit is mounted or downloaded, and the records written once the image is out.
 */

/** `--cache-from` / `--cache-to`, else `$GANTRY_CACHE_FROM` / `$GANTRY_CACHE_TO` (comma- or space-separated). */
export function cacheRepositories(given: readonly string[] | undefined, env: NodeJS.ProcessEnv, name: string): string[] {
  if (given !== undefined && given.length > 0) return [...given];
  return (env[name] ?? "").split(/[\s,]+/).filter((s) => s !== "");
}

interface PendingRecord {
  keyHex: string;
  layer: Layer;
  what: string;
}

/**
 * The registry cache as one build uses it (open() makes it): layers found by key, and the build's
 * layers recorded once the image is written. A failing cache is a warning; the layer is then packed.
 */
export class SharedCache {
  private readonly pending: PendingRecord[] = [];
  /** The hits of this build by diffId: their facts are fetched only if a build needs them. */
  private readonly hits = new Map<Digest, CacheHit>();
  /** The build's facts store, once factsOver() made it. */
  private facts: FactsStore | undefined;

  private constructor(
    private readonly cache: RegistryLayerCache,
    /** The registry the image is pushed to, if it is pushed: hits there are mounted, not downloaded. */
    private readonly outputRegistry: string | undefined,
    private readonly progress: ProgressListener,
    /** Whether find() can answer (there are repositories to read from, not only to record in). */
    readonly looksUp: boolean,
  ) {}

  /**
   * The registry cache of a build, or undefined when it has none; references are checked
   * here, before any work.
   */
  static open(opts: { from: readonly string[]; to: readonly string[]; output: ImageReference; access: AccessOptions; book: BlobLocationBook; progress: ProgressListener }): SharedCache | undefined {
    if (opts.from.length === 0 && opts.to.length === 0) return undefined;
    const { access } = opts;
    const cache = new RegistryLayerCache({
      from: opts.from, to: opts.to, blobLocations: opts.book, progress: opts.progress,
      ...(access.creds !== undefined ? { creds: access.creds } : {}),
      ...(access.tlsVerify !== undefined ? { tlsVerify: access.tlsVerify } : {}),
      ...(access.env !== undefined ? { env: access.env } : {}),
      ...(access.signal !== undefined ? { signal: access.signal } : {}),
    });
    return new SharedCache(cache, opts.output.registry, opts.progress, opts.from.length > 0);
  }

  /**
   * The layer facts of the build: the local store's, and, for a layer taken from the
   * registry cache, the record's, fetched the first time they are asked for (then kept in
   * the local store). A build whose layers all hit never fetches them.
   */
  factsOver(local: FactsStore): FactsStore {
    return this.facts = {
      load: async (diffId) => {
        const known = await local.load(diffId);
        const hit = this.hits.get(diffId);
        if (known !== undefined || hit === undefined) return known;
        const facts = await this.cache.facts(hit);
        if (facts !== undefined) await local.save(diffId, facts).catch(() => {});
        return facts;
      },
      save: (diffId, facts) => local.save(diffId, facts),
    };
  }

  /**
   * The layer of `key` from the registry cache, or undefined (then it is packed). Pushed
   * to the cache's own registry, it is mounted there; otherwise it is downloaded, verified
   * and recorded in the local index.
   */
  async find(key: IndexKey, what: string, local: { store: BlobStore; index: LayerIndex }): Promise<Layer | undefined> {
    const hit = await this.cache.lookup(key.hex);
    if (hit === undefined) return undefined;
    const describe = `new ${what}`;
    let layer: Layer;
    if (hit.registry === this.outputRegistry) {
      this.progress({ step: "layer", message: `${what}: ${hit.record.layer.digest} from the registry cache ${hit.display}, to be mounted (not packed)` });
      layer = this.cache.remoteLayer(hit, describe);
    } else {
      const stored = await this.cache.download(hit, local.store, describe);
      if (stored === undefined) return undefined;
      await local.index.record(key, stored);
      this.progress({ step: "layer", message: `${what}: ${stored.digest} from the registry cache ${hit.display}, downloaded and verified (not packed)` });
      layer = storedLayer(local.store, stored, `${describe} (from the registry cache ${hit.display})`);
    }
    this.hits.set(layer.diffId, hit);
    this.remember(key, layer, what);
    return layer;
  }

  /** A layer of this build with its key: recorded in the `--cache-to` repositories once the image is written. */
  remember(key: IndexKey, layer: Layer, what: string): void {
    if (this.cache.writes) this.pending.push({ keyHex: key.hex, layer, what: `new ${what}` });
  }

  /**
   * Writes the records (after the image, so the layers are already in the output registry
   * to mount from). A layer whose facts cannot be had gets no record.
   */
  async writeRecords(): Promise<void> {
    for (const r of this.pending) {
      await this.cache.write(r.keyHex, r.layer, async () => this.facts?.load(r.layer.diffId), r.what);
    }
  }
}
