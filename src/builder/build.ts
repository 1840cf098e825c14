import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Digest } from "../model/digest.js";
import { digestHex, sha256 } from "../model/digest.js";
import { SpecError, throwIfAborted } from "../model/errors.js";
import type { Image, Layer } from "../model/image.js";
import type { ProgressListener } from "../model/progress.js";
import { BlobStore, storedLayer, type StoredLayerBlob } from "../cache/blob-store.js";
import { LayerIndex, layerKey, type LayerKey, type LayerRecipe } from "../cache/layer-index.js";
import { defaultCacheDir } from "../cache/location.js";
import { TreeIndex } from "../cache/tree-index.js";
import { imageFromParts } from "../image/image.js";
import { ImageReference, resolveReference } from "../transports/reference.js";
import { accessOf, type AccessOptions } from "../transports/transport.js";
import { LOAD_INTO_ENGINE, dockerDaemonTransport } from "../transports/docker-daemon/transport.js";
import { readImageFor } from "../ops/source.js";
import { mergedTree, rememberTree } from "../layer/merged-tree.js";
import { applyPackedEntries } from "../layer/apply-layer.js";
import { packLayer } from "../layer/pack.js";
import { loadSpecFile, specDirOf, validateSpec } from "./spec-load.js";
import type { ImageSpecInput } from "./spec-schema.js";
import { planBuild, type BuildPlan, type PlannedLayer } from "./plan.js";
import { configBytes, imageConfig, type NewLayerRecord } from "./config.js";
import { layerContent } from "./layer-content.js";
import type { SourceTree } from "../layer/sources.js";
export interface BuildOptions extends AccessOptions {
  /** A spec file (JSON, or a TS/JS module), or a spec object. */
  spec: string | ImageSpecInput;
  /** For a spec object: the directory its relative paths start from (default: the working directory). */
  specDir?: string;
  /** Where to write: a path (docker-archive), any writable reference (`oci:DIR`...), or "-" for stdout. Default `./NAME.tar`. */
  output?: string;
  /** Load the image into the Docker engine (`$DOCKER_HOST`), tagged with its name and every tag; instead of `output`. */
  load?: boolean;
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
  /** Where the image went, as a reference. */
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

/** The destination, checked before any work: `--load`, `-o`, or `./NAME.tar`. */
async function outputOf(opts: BuildOptions, plan: BuildPlan): Promise<ImageReference> {
  if (opts.load && opts.output !== undefined) throw new SpecError(`give either an output (${opts.output}) or --load, not both`);
  const output = opts.load
    ? new ImageReference(dockerDaemonTransport as never, LOAD_INTO_ENGINE)
    : await resolveReference(opts.output ?? defaultOutput(plan.name), "write");
  await output.checkWritable(accessOf(opts));
  return output;
}

/** The platform the base is read for: the spec's, when it names one (the host's otherwise). */
function basePlatform(plan: BuildPlan): string | undefined {
  if (plan.architecture === undefined) return undefined;
  return [plan.os ?? "linux", plan.architecture, plan.variant].filter((p) => p !== undefined).join("/");
}

export async function buildImage(opts: BuildOptions): Promise<BuildResult> {
  const { signal } = opts;
  const progress = opts.onProgress ?? (() => {});
  const plan = await loadPlan(opts);
  const output = await outputOf(opts, plan);
  throwIfAborted(signal);

  const tempStore = opts.noCache ? await mkdtemp(join(tmpdir(), "gantry-build-")) : undefined;
  const cacheDir = opts.cacheDir ?? defaultCacheDir(opts.env);
  const store = new BlobStore(tempStore ?? join(cacheDir, "blobs"));
  // --no-cache neither reads nor writes the index.
  const index = opts.noCache ? undefined : new LayerIndex(join(cacheDir, "layers"));
  const trees = opts.noCache ? undefined : new TreeIndex(join(cacheDir, "trees"));
  try {
    let base: Image | undefined;
    if (plan.fromImage !== undefined) {
      progress({ step: "base", message: `reading base ${plan.fromImage}` });
      const from = await resolveReference(plan.fromImage, "read");
      if (from.mutable) {
        progress({ step: "base", message: `warning: the base ${plan.fromImage} is not pinned by digest; the build is only as reproducible as that tag (add @sha256:...)` });
      }
      const platform = basePlatform(plan);
      base = await readImageFor(from, {
        ...accessOf(opts), cache: store, firstOfMany: true,
        ...(plan.pick !== undefined ? { pick: plan.pick } : {}), ...(platform !== undefined ? { platform } : {}),
      });
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
        const recordTree = i < plan.layers.length - 1;
        layer = await packNewLayer(layers, layerPlan, what, { plan, store, trees, signal, progress, baseConfig: base?.config, walked: key?.walked, recordTree });
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
    const image = imageFromParts({ configBytes: bytes, config, layers, repoTags }, "the new image config");

    progress({ step: "write", message: `writing ${output}` });
    const written = await output.write([{ doc: image, repoTags }], accessOf(opts));
    const baseCount = base?.layers.length ?? 0;
    return {
      output: opts.output ?? (opts.load ? `${dockerDaemonTransport.prefix}${repoTags.join(",")}` : defaultOutput(plan.name)),
      repoTags,
      configDigest,
      manifestDigest: written.digests[0] ?? image.digest,
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
    ...(plan.level !== undefined ? { level: plan.level } : {}),
  };
}

interface PackContext {
  plan: BuildPlan;
  store: BlobStore;
  trees: TreeIndex | undefined;
  signal: AbortSignal | undefined;
  progress: ProgressListener;
  baseConfig: Image["config"] | undefined;
  walked: SourceTree | undefined;
  /** A layer above will be compared with this one: learn its merged tree while packing it. */
  recordTree: boolean;
}

/** Compares the layer's content with the merged tree of `below` and packs what differs. */
async function packNewLayer(below: readonly Layer[], layerPlan: PlannedLayer, what: string, ctx: PackContext): Promise<Layer> {
  const { plan, store, signal, progress } = ctx;
  progress({ step: "layer", message: `comparing ${what} with the base` });
  const tree = await mergedTree(below, { signal, store: ctx.trees });
  const content = await layerContent(tree, layerPlan, below, plan, signal, ctx.baseConfig, ctx.walked);
  progress({ step: "layer", message: `packing ${what}: ${content.entries.length} entries (${plan.compression})` });
  const fileDigests = ctx.recordTree ? new Map<string, Digest>() : undefined;
  const packOpts: Parameters<typeof packLayer>[1] = { compression: plan.compression, store, describe: `new ${what}`, fileDigests };
  if (plan.level !== undefined) packOpts.level = plan.level;
  if (signal) packOpts.signal = signal;
  // A staged layer's files are read while packing; its staging directory goes after.
  const layer = await packLayer(content.entries, packOpts).finally(() => content.dispose());
  if (fileDigests) {
    // The merged tree with this layer on top, from the entries just packed: the layer above
    // (in this build and the next) is compared with it without reading this one back.
    applyPackedEntries(tree, content.entries, fileDigests, below.length, `new ${what}`);
    await rememberTree([...below, layer], tree, ctx.trees);
  }
  return layer;
}


function describeLayer(layer: BuildPlan["layers"][number]): string {
  const parts: string[] = [];
  if (layer.sources.length) parts.push(`copyToRoot ${layer.sources.length} source(s)`);
  if (layer.runAsRoot !== undefined) parts.push("runAsRoot");
  if (layer.extraCommands !== undefined) parts.push("extraCommands");
  return parts.join(", ") || "empty layer";
}
