import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Digest } from "../model/digest.js";
import { digestHex, sha256 } from "../model/digest.js";
import { throwIfAborted } from "../model/errors.js";
import type { Image, Layer } from "../model/image.js";
import type { ProgressListener } from "../model/progress.js";
import { BlobStore, storedLayer, type StoredLayerBlob } from "../cache/blob-store.js";
import { LayerIndex, layerKey, type LayerKey, type LayerRecipe } from "../cache/layer-index.js";
import { defaultCacheDir } from "../cache/location.js";
import { readImage } from "../transports/read.js";
import { writeImage } from "../transports/write.js";
import { mergedTree } from "../layer/tree.js";
import { packLayer } from "../layer/pack.js";
import { loadSpecFile, specDirOf, validateSpec } from "./spec-load.js";
import type { ImageSpecInput } from "./spec-schema.js";
import { planBuild, type BuildPlan, type PlannedLayer } from "./plan.js";
import { configBytes, imageConfig, type NewLayerRecord } from "./config.js";
import { layerContent } from "./layer-content.js";
import type { SourceTree } from "../layer/sources.js";
import { registryOptionsFrom, type RegistryAccess } from "../transports/docker/options.js";
// Installs the docker:// reader, so a registry `fromImage` works.
import "../transports/docker/register.js";

export interface BuildOptions extends RegistryAccess {
  /** A spec file (JSON, or a TS/JS module), or a spec object. */
  spec: string | ImageSpecInput;
  /** For a spec object: the directory its relative paths start from (default: the working directory). */
  specDir?: string;
  /** Where to write: a path (docker-archive), any writable reference (`oci:DIR`...), or "-" for stdout. Default `./NAME.tar`. */
  output?: string;
  /** Extra NAME:TAG names for the image, besides the spec's own. */
  tags?: readonly string[];
  /** Bypass the cache: new blobs go to a temporary store removed afterwards. */
  noCache?: boolean;
  /** The cache directory (default `$GANTRY_CACHE`, `$XDG_CACHE_HOME/gantry`, `~/.cache/gantry`). */
  cacheDir?: string;
}

export interface BuiltLayer {
  digest: Digest;
  diffId: Digest;
  size: number;
  base: boolean;
  /** A new layer found in the layer index: not walked against the base, packed or compressed. */
  cached: boolean;
}

export interface BuildResult {
  output: string;
  repoTags: string[];
  configDigest: Digest;
  manifestDigest: Digest;
  layers: BuiltLayer[];
  image: Image;
}

/** The image name's last path component, for the default output `./NAME.tar`. */
function defaultOutput(name: string): string {
  return `./${name.slice(name.lastIndexOf("/") + 1)}.tar`;
}

async function loadPlan(opts: BuildOptions): Promise<BuildPlan> {
  const env = opts.env ?? process.env;
  if (typeof opts.spec === "string") {
    const spec = validateSpec(await loadSpecFile(opts.spec), `spec ${opts.spec}`);
    return planBuild(spec, specDirOf(opts.spec), env);
  }
  const spec = validateSpec(opts.spec, "spec");
  return planBuild(spec, resolve(opts.specDir ?? "."), env);
}

export async function buildImage(opts: BuildOptions): Promise<BuildResult> {
  const { signal } = opts;
  const progress = opts.onProgress ?? (() => {});
  const plan = await loadPlan(opts);
  throwIfAborted(signal);

  const tempStore = opts.noCache ? await mkdtemp(join(tmpdir(), "gantry-build-")) : undefined;
  const cacheDir = opts.cacheDir ?? defaultCacheDir(opts.env);
  const store = new BlobStore(tempStore ?? join(cacheDir, "blobs"));
  // --no-cache neither reads nor writes the index.
  const index = opts.noCache ? undefined : new LayerIndex(join(cacheDir, "layers"));
  try {
    let base: Image | undefined;
    if (plan.fromImage !== undefined) {
      progress({ step: "base", message: `reading base ${plan.fromImage}` });
      const readOpts: Parameters<typeof readImage>[1] = {};
      if (signal) readOpts.signal = signal;
      if (plan.pick !== undefined) readOpts.pick = plan.pick;
      readOpts.registry = registryOptionsFrom(opts, store);
      if (plan.fromImage.startsWith("docker://") && !plan.fromImage.includes("@sha256:")) {
        progress({ step: "base", message: `warning: the base ${plan.fromImage} is not pinned by digest; the build is only as reproducible as that tag (add @sha256:...)` });
      }
      base = await readImage(plan.fromImage, readOpts);
    }

    const layers: Layer[] = [...(base?.layers ?? [])];
    const records: NewLayerRecord[] = [];
    const cachedLayers = new Set<Layer>();
    for (const [i, layerPlan] of plan.layers.entries()) {
      throwIfAborted(signal);
      const what = `layer ${i + 1}/${plan.layers.length}`;
      // The key needs only the diffIds below, so a hit never reads the base's layers.
      let key: LayerKey | undefined;
      let hit: StoredLayerBlob | undefined;
      if (index !== undefined && isCacheable(layerPlan)) {
        key = await layerKey(layerRecipe(plan, layerPlan, layers), { signal });
        hit = await index.lookup(key, store);
      }
      let layer: Layer;
      if (hit !== undefined) {
        progress({ step: "layer", message: `${what} unchanged: ${hit.digest} from the cache` });
        // Read (and verified) only when the output is written; a damaged blob is named there.
        layer = storedLayer(store, hit, `the cached ${store.pathOf(hit.digest)} of new ${what} (delete it to pack the layer again)`);
        cachedLayers.add(layer);
      } else {
        layer = await packNewLayer(layers, layerPlan, what, { plan, store, signal, progress, baseConfig: base?.config, walked: key?.walked });
        if (index !== undefined && key !== undefined && !(await index.record(key, layer))) {
          progress({ step: "layer", message: `${what} not cached: a source file changed just before the build; the next build packs it again` });
        }
      }
      layers.push(layer);
      records.push({ diffId: layer.diffId, createdBy: `gantry build: ${describeLayer(layerPlan)}` });
    }

    const config = imageConfig(base?.config, plan, records);
    const bytes = configBytes(config);
    const configDigest = sha256(bytes);
    const tag = plan.tag ?? digestHex(configDigest).slice(0, 32);
    const repoTags = [`${plan.name}:${tag}`, ...(opts.tags ?? [])];
    const image: Image = { configBytes: bytes, configDigest, config, layers, repoTags };

    const output = opts.output ?? defaultOutput(plan.name);
    progress({ step: "write", message: `writing ${output}` });
    const writeOpts: Parameters<typeof writeImage>[2] = {};
    if (signal) writeOpts.signal = signal;
    writeOpts.registry = registryOptionsFrom(opts, store);
    const written = await writeImage(output, [{ image, repoTags }], writeOpts);
    const baseCount = base?.layers.length ?? 0;
    return {
      output,
      repoTags,
      configDigest,
      manifestDigest: written.manifestDigests[0]!,
      layers: layers.map((l, i) => ({ digest: l.digest, diffId: l.diffId, size: l.size, base: i < baseCount, cached: cachedLayers.has(l) })),
      image,
    };
  } finally {
    if (tempStore) await rm(tempStore, { recursive: true, force: true });
  }
}

/**
 * A layer with a script (runAsRoot, extraCommands) is never cached: its bytes depend on what
 * the script does, which no key of its inputs can tell.
 */
function isCacheable(layer: PlannedLayer): boolean {
  return layer.runAsRoot === undefined && layer.extraCommands === undefined;
}

function layerRecipe(plan: BuildPlan, layer: PlannedLayer, below: readonly Layer[]): LayerRecipe {
  return {
    below: below.map((l) => l.diffId),
    sources: layer.sources,
    perms: layer.perms,
    uid: plan.uid, gid: plan.gid, uname: plan.uname, gname: plan.gname,
    mtime: plan.mtime,
    compression: plan.compression,
  };
}

interface PackContext {
  plan: BuildPlan;
  store: BlobStore;
  signal: AbortSignal | undefined;
  progress: ProgressListener;
  baseConfig: Image["config"] | undefined;
  walked: SourceTree | undefined;
}

/** Compares the layer's content with the merged tree of `below` and packs what differs. */
async function packNewLayer(below: readonly Layer[], layerPlan: PlannedLayer, what: string, ctx: PackContext): Promise<Layer> {
  const { plan, store, signal, progress } = ctx;
  progress({ step: "layer", message: `comparing ${what} with the base` });
  const tree = await mergedTree(below, signal ? { signal } : {});
  const content = await layerContent(tree, layerPlan, below, plan, signal, ctx.baseConfig, ctx.walked);
  progress({ step: "layer", message: `packing ${what}: ${content.entries.length} entries (${plan.compression})` });
  const packOpts: Parameters<typeof packLayer>[1] = { compression: plan.compression, store, describe: `new ${what}` };
  if (signal) packOpts.signal = signal;
  // A staged layer's files are read while packing; its staging directory goes after.
  return packLayer(content.entries, packOpts).finally(() => content.dispose());
}


function describeLayer(layer: BuildPlan["layers"][number]): string {
  const parts: string[] = [];
  if (layer.sources.length) parts.push(`copyToRoot ${layer.sources.length} source(s)`);
  if (layer.runAsRoot !== undefined) parts.push("runAsRoot");
  if (layer.extraCommands !== undefined) parts.push("extraCommands");
  return parts.join(", ") || "empty layer";
}
