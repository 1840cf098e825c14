import { createHash } from "node:crypto";
import type { Digest } from "../model/digest.js";
import { SpecError, throwIfAborted } from "../model/errors.js";
import type { Image, Layer } from "../model/image.js";
import type { ProgressListener } from "../model/progress.js";
import { storedLayer, type BlobStore, type StoredLayerBlob } from "../cache/blob-store.js";
import type { IndexKey, LayerIndex } from "../cache/layer-index.js";
import { keyOfWalk, recipeText, walkForKey, type LayerKey, type LayerRecipe } from "../cache/content-key.js";
import { SnapshotHasher, type SourceSnapshots } from "../cache/source-snapshot.js";
import type { StatIndex } from "../cache/stat-index.js";
import { neverBuiltFrom, type KeyWalk } from "../cache/content-digests.js";
import type { FactsStore } from "../layer/merged-tree.js";
import { packedFacts } from "../layer/apply-layer.js";
import type { SharedCache } from "./shared-cache.js";
import type { LayerEntry } from "../layer/differ.js";
import { rememberPackedLayer } from "../layer/merged-tree.js";
import { BelowTree, type LookupJournalStore } from "../layer/below-tree.js";
import { packLayer } from "../layer/pack.js";
import type { ArchiveAssembly, LayerPlace } from "../archive/assembly.js";
import type { SourceSpec, SourceTree } from "../layer/sources.js";
import type { NewLayerRecord } from "./config.js";
import { layerContent, type WalkedSources } from "./layer-content.js";
import type { ExpandedLayer, ExpandedPlan } from "./plan.js";
import { assignBins, findUnits } from "./units.js";
import { releasePrestartedWorker } from "../util/prestarted-worker.js";

/**
 * The new layers of one image, on its base: each found in the layer index by its key, or
 * compared with the tree below and packed. A `splittable` layer (`maxLayers`) becomes one
 * layer per bin of units, each compared with the base alone, so that a change to one unit
 * changes one layer and no other layer's key.
 */

/** What every layer of a build shares: the stores, and the layers already packed (for other platforms). */
export interface LayerContext {
  plan: ExpandedPlan;
  store: BlobStore;
  index: LayerIndex | undefined;
  facts: FactsStore | undefined;
  /** Content digests of source files by their fingerprint (with `index`). */
  stat: StatIndex | undefined;
  /** What comparisons asked of the trees below, by chain (with `facts`). */
  journal: LookupJournalStore | undefined;
  /** The keys of unchanged sources, found by an lstat walk (with `index`). */
  snapshots: SourceSnapshots | undefined;
  /** The registry cache (`--cache-from`, `--cache-to`), looked in after the local index. */
  shared: SharedCache | undefined;
  signal: AbortSignal | undefined;
  progress: ProgressListener;
  /**
   * Layers packed in this build by the signature of their entries: another platform's
   * identical layer (same sources, same entries) is the same blob, so it is not packed again.
   * Absent when the build makes one image: no signature is then made (100,000 entries'
   * worth of text to hash).
   */
  packed: Map<string, Layer> | undefined;
  /** The output archive being put together, new layers packed straight into it (archive/assembly.ts). */
  assembly?: ArchiveAssembly | undefined;
}

/** The new layers of one image, bottom first, with the history record of each. */
export interface NewLayers {
  layers: Layer[];
  records: NewLayerRecord[];
  /** The layers taken from the local index or the registry cache rather than packed. */
  cached: Set<Layer>;
}

/** A layer to make: its sources (walked for its key, or to be walked), and what it is compared with. */
interface LayerJob {
  plan: ExpandedLayer;
  what: string;
  /** The sources already walked (for a bin of units: that part of the walk). */
  walk: SourceTree | undefined;
  /** The layers whose merged tree it is compared with: all below it, or the base alone (a bin). */
  comparedWith: readonly Layer[];
}

/**
 * Makes the new layers of one image on `base` (none: from scratch), as described above.
 * Throws SpecError when `maxLayers` leaves no layer for the split one.
 */
export async function buildNewLayers(base: Image | undefined, ctx: LayerContext): Promise<NewLayers> {
  const baseLayers = base?.layers ?? [];
  const layers: Layer[] = [...baseLayers];
  const out: NewLayers = { layers: [], records: [], cached: new Set() };
  const planned = ctx.plan.layers;
  ctx.assembly?.start(baseLayers);
  for (const [i, layerPlan] of planned.entries()) {
    throwIfAborted(ctx.signal);
    const jobs = layerPlan.splittable
      ? await splitJobs(layerPlan, binsFor(ctx.plan, baseLayers.length), baseLayers, ctx.signal)
      : [{ plan: layerPlan, what: `layer ${i + 1}/${planned.length}`, walk: undefined, comparedWith: layers }];
    for (const job of jobs) {
      const comparedWith = job.comparedWith === layers ? [...layers] : job.comparedWith;
      const isLast = i === planned.length - 1 && job === jobs[jobs.length - 1];
      const into = ctx.assembly?.nextLayerAt();
      const { layer, inPlace } = await makeLayer({ ...job, comparedWith }, layers, base, ctx, out, !isLast, into);
      if (inPlace && into) ctx.assembly?.placed(layer.digest, layer.size, into.position);
      else ctx.assembly?.pass(layer.digest, layer.size);
      layers.push(layer);
      out.layers.push(layer);
      out.records.push({ diffId: layer.diffId, createdBy: `gantry build: ${describeLayer(job)}` });
    }
  }
  releasePrestartedWorker(); // no snapshot of these layers took the thread started for one
  return out;
}

/** How many layers `maxLayers` leaves for the splittable layer: the total less the base's and the other new ones. */
function binsFor(plan: ExpandedPlan, baseLayers: number): number {
  const max = plan.maxLayers ?? 1;
  const others = plan.layers.filter((l) => !l.splittable).length;
  const bins = max - baseLayers - others;
  if (bins < 1) {
    throw new SpecError(`"maxLayers" is ${max}, but the base has ${baseLayers} layer(s) and the spec ${others} more besides the split one; maxLayers counts every layer, so give at least ${baseLayers + others + 1}`);
  }
  return bins;
}

/** One job per bin of units (units.ts), each over its part of one walk of the sources. */
async function splitJobs(layerPlan: ExpandedLayer, bins: number, baseLayers: readonly Layer[], signal: AbortSignal | undefined): Promise<LayerJob[]> {
  releasePrestartedWorker(); // the sources are walked in full
  const { tree: walk } = await walkForKey(layerPlan.sources, { signal });
  const parts = assignBins(findUnits(walk), bins);
  if (parts.length === 0) return [{ plan: layerPlan, what: "layer 1/1", walk, comparedWith: baseLayers }];
  return parts.map((units, b) => ({
    plan: layerPlan,
    what: `layer ${b + 1}/${parts.length} of the split (${units.length} unit(s): ${units.slice(0, 3).map((u) => u.name).join(", ")}${units.length > 3 ? ", …" : ""})`,
    walk: walk.subset(units.flatMap((u) => u.paths)),
    comparedWith: baseLayers,
  }));
}

/**
 * A layer with a script (runAsRoot, extraCommands) is never cached: its bytes depend on what
 * the script does, which no key of its inputs can tell.
 */
function isCacheable(layer: ExpandedLayer): boolean {
  return layer.runAsRoot === undefined && layer.extraCommands === undefined;
}

function layerRecipe(plan: ExpandedPlan, layer: ExpandedLayer, comparedWith: readonly Layer[]): LayerRecipe {
  return {
    below: comparedWith.map((l) => l.diffId),
    sources: layer.sources,
    perms: layer.perms,
    uid: plan.uid, gid: plan.gid, uname: plan.uname, gname: plan.gname,
    mtime: plan.mtime,
    compression: plan.compression,
    ...(plan.level !== undefined ? { level: plan.level } : {}),
  };
}

/**
 * One new layer: from the cache if its key is there, else packed (into `into` as well, where
 * the output archive has its place: `inPlace` then says it is there).
 *
 * The key is made before packing, so that a hit packs nothing, except on a first build from
 * where the sources are (firstBuildFrom): there the layer is packed first and its key made
 * from the digests packing learnt, so each file is read once rather than twice.
 */
async function makeLayer(job: LayerJob, below: readonly Layer[], base: Image | undefined, ctx: LayerContext, out: NewLayers, layerAbove: boolean, into: LayerPlace | undefined): Promise<{ layer: Layer; inPlace: boolean }> {
  const { store, index, signal } = ctx;
  // The key needs only the diffIds compared with, so a hit never reads the layers below.
  let key: LayerKey | undefined;
  let hit: StoredLayerBlob | undefined;
  let snapshot: SnapshotHasher | undefined;
  /** A walk whose key waits for packing (a first build from where the sources are). */
  let keyAfterPacking: KeyWalk | undefined;
  const recipe = layerRecipe(ctx.plan, job.plan, job.comparedWith);
  // What a snapshot record is filed under: the recipe, the sources named by their host paths.
  const recordSnapshot = (walked: SnapshotHasher, key: IndexKey): Promise<void> | undefined =>
    ctx.snapshots?.record(recipeText(recipe), recipe.sources, walked, key);
  const cacheable = index !== undefined && isCacheable(job.plan);
  if (cacheable && job.walk === undefined) {
    // Sources unchanged since a build recorded their snapshot: the key without making it.
    const unchanged = await ctx.snapshots?.unchangedKey(recipeText(recipe), recipe.sources, signal);
    hit = unchanged && await index.lookup(unchanged, store);
    if (hit !== undefined) return { layer: cachedLayer(unchanged!, hit, job, ctx, out, " (its sources as the last build saw them)"), inPlace: false };
  }
  // From here the layer is walked in full or packed, which the thread started for a snapshot
  // would not share: it would only hold memory.
  releasePrestartedWorker();
  if (cacheable) {
    if (job.walk === undefined && ctx.snapshots !== undefined) snapshot = new SnapshotHasher();
    const packFirst = job.walk === undefined && await firstBuildFrom(job.plan.sources, ctx);
    const walked = job.walk !== undefined ? { tree: job.walk } : await walkForKey(job.plan.sources, { signal, stat: ctx.stat, onStat: snapshot?.visit, deferHashing: packFirst });
    if (packFirst) keyAfterPacking = walked;
    else {
      key = await keyOfWalk(recipe, walked.tree, { stat: ctx.stat, signal, prehashed: walked.prehashed });
      hit = await index.lookup(key, store);
    }
  }
  if (hit !== undefined) {
    if (snapshot !== undefined) await recordSnapshot(snapshot, key!);
    return { layer: cachedLayer(key!, hit, job, ctx, out), inPlace: false };
  }
  const shared = index !== undefined && key !== undefined ? await ctx.shared?.find(key, job.what, { store, index }) : undefined;
  if (shared !== undefined) {
    out.cached.add(shared);
    return { layer: shared, inPlace: false };
  }
  const walked: WalkedSources | undefined = key !== undefined ? { tree: key.walked, digests: key.digests }
    : keyAfterPacking !== undefined ? { tree: keyAfterPacking.tree } : job.walk && { tree: job.walk };
  const learn = layerAbove || key !== undefined || keyAfterPacking !== undefined;
  let packed: Packed | undefined = await packNew(job, below, base, ctx, walked, { learn, layerAbove, into });
  const { layer, inPlace } = packed;
  let changed: string | undefined;
  if (keyAfterPacking !== undefined) {
    const learnt = packed.fileDigests;
    // The key is made of what packing read, so there is nothing to check against it, and the
    // layer's entries need not be held while it is made (a sixth of a big walk's memory).
    packed = undefined;
    key = await keyOfWalk(recipe, keyAfterPacking.tree, { stat: ctx.stat, signal, prehashed: keyAfterPacking.prehashed, learnt });
  } else if (key !== undefined && packed.fileDigests !== undefined) {
    changed = changedSince(key, packed.entries, packed.fileDigests);
  }
  if (index !== undefined && key !== undefined) {
    if (changed === undefined) {
      await index.record(key, layer);
      if (snapshot !== undefined) await recordSnapshot(snapshot, key);
      ctx.shared?.remember(key, layer, job.what);
    } else {
      ctx.progress({ step: "layer", message: `${job.what} not cached: ${changed} changed while the layer was built; the next build packs it again` });
    }
  }
  return { layer, inPlace };
}

/**
 * Whether no key was made from where these sources are (the stat index knows none of their
 * directories) and no registry cache is looked in: a first build from there. A key made
 * first would only find the same files built from another place (a moved checkout), and
 * would read every file twice to do so.
 */
async function firstBuildFrom(sources: readonly SourceSpec[], ctx: LayerContext): Promise<boolean> {
  return ctx.stat !== undefined && ctx.shared?.looksUp !== true && await neverBuiltFrom(sources, ctx.stat);
}

/** A layer the layer index has for `key`. */
function cachedLayer(key: IndexKey, hit: StoredLayerBlob, job: LayerJob, ctx: LayerContext, out: NewLayers, how = ""): Layer {
  const { store } = ctx;
  ctx.progress({ step: "layer", message: `${job.what} unchanged: ${hit.digest} from the cache${how}` });
  // Read (and verified) only when the output is written; a damaged blob is named there.
  const layer = storedLayer(store, hit, `the cached ${store.pathOf(hit.digest)} of new ${job.what} (delete it to pack the layer again)`);
  out.cached.add(layer);
  ctx.shared?.remember(key, layer, job.what);
  return layer;
}

/**
 * A file whose bytes, as packed, are not the ones its key was made of (it was written
 * between the two reads): the layer is right for what was read, but must not be recorded
 * under a key that says otherwise.
 */
function changedSince(key: LayerKey, entries: readonly LayerEntry[], packed: ReadonlyMap<string, Digest>): string | undefined {
  for (const e of entries) {
    if (e.content?.kind !== "hostFile") continue;
    const got = packed.get(e.path);
    if (got !== undefined && got !== key.digests.get(e.content.path)) return e.content.path;
  }
  return undefined;
}

interface Packed {
  layer: Layer;
  /** Whether its bytes were also written where `into` said. */
  inPlace: boolean;
  entries: readonly LayerEntry[];
  /** The content digest of each file as packed, by layer path, when asked for. */
  fileDigests: ReadonlyMap<string, Digest> | undefined;
}

/**
 * Compares the layer's content with the merged tree of what it is compared with, and packs
 * what differs. `learn`: hash each file as it is packed (for the layer above, and to check
 * the bytes against the key). `layerAbove`: a layer of this build goes on top, and wants
 * the merged tree with this one in it.
 */
async function packNew(job: LayerJob, below: readonly Layer[], base: Image | undefined, ctx: LayerContext, walked: WalkedSources | undefined, { learn, layerAbove, into }: { learn: boolean; layerAbove: boolean; into: LayerPlace | undefined }): Promise<Packed> {
  const { plan, store, signal, progress } = ctx;
  progress({ step: "layer", message: `comparing ${job.what} with the base` });
  const belowTree = new BelowTree(job.comparedWith, { signal, facts: ctx.facts, journal: ctx.journal });
  const content = await layerContent(belowTree, job.plan, job.comparedWith, plan, signal, base?.config, walked, progress);
  try {
    const signature = ctx.packed && entriesSignature(content.entries, plan);
    const same = signature && ctx.packed?.get(signature);
    if (same) {
      progress({ step: "layer", message: `${job.what}: the same entries as a layer already packed for another platform` });
      return { layer: same, entries: content.entries, fileDigests: undefined, inPlace: false };
    }
    progress({ step: "layer", message: `packing ${job.what}: ${content.entries.length} entries (${plan.compression})` });
    const fileDigests = learn ? new Map<string, Digest>() : undefined;
    const packOpts: Parameters<typeof packLayer>[1] = { compression: plan.compression, store, describe: `new ${job.what}`, fileDigests, onProgress: progress, alsoInto: into };
    if (plan.level !== undefined) packOpts.level = plan.level;
    if (signal) packOpts.signal = signal;
    const layer = await packLayer(content.entries, packOpts);
    if (fileDigests) {
      const facts = packedFacts(content.entries, fileDigests, `new ${job.what}`);
      // The tree below this layer in the image (not what a bin was compared with), if the
      // comparison read it whole, gets it on top for the layer above; the facts are kept
      // either way. The top layer's tree would be held, unused, to the end of the build
      // (130,000 nodes for as many files).
      const chainTree = layerAbove && job.comparedWith.length === below.length ? belowTree.loaded() : undefined;
      await rememberPackedLayer(below, layer, chainTree, facts, ctx.facts);
    }
    if (signature) ctx.packed?.set(signature, layer);
    return { layer, entries: content.entries, fileDigests, inPlace: into !== undefined };
  } finally {
    // A staged layer's files are read while packing; its staging directory goes after.
    await content.dispose();
  }
}

/** What fixes a layer's bytes, beyond its entries' own fields: where each file's bytes come from. */
function entriesSignature(entries: readonly LayerEntry[], plan: ExpandedPlan): string {
  const hash = createHash("sha256");
  hash.update(`${plan.compression}\0${plan.level ?? ""}\n`);
  for (const e of entries) {
    const from = e.content === undefined ? "" : e.content.kind === "hostFile" ? e.content.path : `stream:${e.content.what}`;
    hash.update(`${e.path}\0${e.type}\0${e.mode}\0${e.uid}\0${e.gid}\0${e.uname}\0${e.gname}\0${e.mtime}\0${e.size}\0${e.linkname ?? ""}\0${e.devmajor ?? ""}\0${e.devminor ?? ""}\0${from}\n`);
  }
  return hash.digest("hex");
}

function describeLayer(job: LayerJob): string {
  const parts: string[] = [];
  if (job.plan.splittable) parts.push(job.what);
  else if (job.plan.sources.length) parts.push(`copyToRoot ${job.plan.sources.length} source(s)`);
  if (job.plan.runAsRoot !== undefined) parts.push("runAsRoot");
  if (job.plan.extraCommands !== undefined) parts.push("extraCommands");
  return parts.join(", ") || "empty layer";
}
