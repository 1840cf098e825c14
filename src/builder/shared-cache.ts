import type { Layer } from "../model/image.js";
import type { ProgressListener } from "../model/progress.js";
import { storedLayer, type BlobStore } from "../cache/blob-store.js";
import type { LayerIndex, IndexKey } from "../cache/layer-index.js";
import type { LayerFactsIndex } from "../cache/layer-facts.js";
import type { LayerFacts } from "../layer/apply-layer.js";
import type { BlobLocationBook } from "../transports/docker/blob-locations.js";
import type { ImageReference } from "../transports/reference.js";
import type { AccessOptions } from "../transports/transport.js";
import { RegistryLayerCache } from "../remote-cache/registry-cache.js";

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
  facts: LayerFacts;
  what: string;
}

export class SharedCache {
  private readonly pending: PendingRecord[] = [];

  private constructor(
    private readonly cache: RegistryLayerCache,
    /** The registry the image is pushed to, if it is pushed: hits there are mounted, not downloaded. */
    private readonly outputRegistry: string | undefined,
    private readonly progress: ProgressListener,
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
    return new SharedCache(cache, opts.output.registry, opts.progress);
  }

  /**
   * The layer of `key` from the registry cache, or undefined (then it is packed). Its facts
   * go into the local facts index, so the layers above compare with it without its bytes.
   * Pushed to the cache's own registry, it is mounted there; otherwise it is downloaded,
   * verified and recorded in the local index.
   */
  async find(key: IndexKey, what: string, local: { store: BlobStore; index: LayerIndex; facts: LayerFactsIndex | undefined }): Promise<Layer | undefined> {
    const hit = await this.cache.lookup(key.hex);
    if (hit === undefined) return undefined;
    const describe = `new ${what}`;
    await local.facts?.save(hit.record.layer.diffId, hit.facts);
    if (hit.registry === this.outputRegistry) {
      this.progress({ step: "layer", message: `${what}: ${hit.record.layer.digest} from the registry cache ${hit.display}, to be mounted (not packed)` });
      const layer = this.cache.remoteLayer(hit, describe);
      this.remember(key, layer, hit.facts, what);
      return layer;
    }
    const stored = await this.cache.download(hit, local.store, describe);
    if (stored === undefined) return undefined;
    await local.index.record(key, stored);
    this.progress({ step: "layer", message: `${what}: ${stored.digest} from the registry cache ${hit.display}, downloaded and verified (not packed)` });
    const layer = storedLayer(local.store, stored, `${describe} (from the registry cache ${hit.display})`);
    this.remember(key, layer, hit.facts, what);
    return layer;
  }

  /** A layer of this build with its key: recorded in the `--cache-to` repositories once the image is written. */
  remember(key: IndexKey, layer: Layer, facts: LayerFacts | undefined, what: string): void {
    if (!this.cache.writes || facts === undefined) return;
    this.pending.push({ keyHex: key.hex, layer, facts, what: `new ${what}` });
  }

  /** Writes the records (after the image, so the layers are already in the output registry to mount from). */
  async writeRecords(): Promise<void> {
    for (const r of this.pending) await this.cache.write(r.keyHex, r.layer, r.facts, r.what);
  }
}
