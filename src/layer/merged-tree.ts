import type { Digest } from "../model/digest.js";
import { GantryError, throwIfAborted } from "../model/errors.js";
import type { Layer } from "../model/image.js";
import { applyLayer, replayFacts, type EntryFacts, type FactList, type LayerFacts } from "./apply-layer.js";
import { FileTree } from "./tree.js";

/**
 * The merged tree of a chain of layers, read as seldom as possible: memoized in the process
 * by chain of diffIds, and, with a FactsStore (the cache's layer facts), each layer's
 * entries kept across builds by its diffId, so a layer is decompressed once and never again:
 * a layer below a changed one, or the same layer under another chain, is replayed from its
 * facts. A layer's facts are a function of its diffId alone, which makes the store sound.
 */

/** Where what each layer says is kept between processes, by the layer's diffId. */
export interface FactsStore {
  load(diffId: Digest): Promise<LayerFacts | undefined>;
  save(diffId: Digest, facts: FactList): Promise<void>;
}

/** How mergedTree reads the layers; a fired `signal` rejects with an AbortedError. */
export interface MergedTreeOptions {
  signal?: AbortSignal | undefined;
  /** Where each layer's facts are loaded from and saved to; without one, every layer not memoized is read. */
  store?: FactsStore | undefined;
}

/** Merged trees by layer chain (diffIds joined), so a base used twice in a process is read once. */
const chainCache = new Map<string, Promise<FileTree>>();
const CHAIN_CACHE_LIMIT = 8;

function chainKey(layers: readonly Layer[], count: number): string {
  return layers.slice(0, count).map((l) => l.diffId).join(",");
}

/**
 * The merged root file system of `layers` (base first), whiteouts applied in layer order.
 * Each layer's tar is streamed once; regular files are hashed on the fly. The result is
 * memoized per chain of diffIds, and a longer chain starts from a memoized prefix; the
 * caller gets its own copy and may change it.
 */
export async function mergedTree(layers: readonly Layer[], opts: MergedTreeOptions = {}): Promise<FileTree> {
  return (await memoizedTree(layers, opts)).clone();
}

/**
 * The same tree, the memo's own, for a caller that only reads it (diff, export): it saves
 * a copy of the tree's index, about 45 bytes a path. It must not be changed.
 */
export async function sharedMergedTree(layers: readonly Layer[], opts: MergedTreeOptions = {}): Promise<FileTree> {
  return memoizedTree(layers, opts);
}

async function memoizedTree(layers: readonly Layer[], opts: MergedTreeOptions): Promise<FileTree> {
  const key = chainKey(layers, layers.length);
  for (;;) {
    let pending = chainCache.get(key);
    if (pending === undefined) {
      pending = buildChain(layers, opts.signal, opts.store);
      remember(key, pending);
    }
    try {
      return await pending;
    } catch (err) {
      // Someone else's abort must not fail this caller: build again under our own signal.
      const othersAbort = err instanceof GantryError && err.code === "ABORTED" && !opts.signal?.aborted;
      if (!othersAbort) throw err;
    }
  }
}

/** Drops the trees this process remembers (a long-running caller's memory, or a test's clean slate). */
export function forgetMergedTrees(): void {
  chainCache.clear();
}

function remember(key: string, tree: Promise<FileTree>): void {
  chainCache.delete(key);
  chainCache.set(key, tree);
  tree.catch(() => { if (chainCache.get(key) === tree) chainCache.delete(key); });
  while (chainCache.size > CHAIN_CACHE_LIMIT) {
    const oldest = chainCache.keys().next().value;
    if (oldest === undefined) break;
    chainCache.delete(oldest);
  }
}

/** The longest prefix of the chain already known in this process. */
async function knownPrefix(layers: readonly Layer[]): Promise<{ tree: FileTree; start: number }> {
  for (let k = layers.length - 1; k > 0; k--) {
    const memo = chainCache.get(chainKey(layers, k));
    if (memo === undefined) continue;
    const tree = await memo.catch(() => undefined);
    if (tree) return { tree: tree.clone(), start: k };
  }
  return { tree: new FileTree(), start: 0 };
}

async function buildChain(layers: readonly Layer[], signal: AbortSignal | undefined, store: FactsStore | undefined): Promise<FileTree> {
  const { tree, start } = await knownPrefix(layers);
  for (let i = start; i < layers.length; i++) {
    const layer = layers[i];
    if (layer === undefined) continue;
    throwIfAborted(signal);
    const name = `layer ${i + 1} of ${layers.length} (${layer.diffId})`;
    const known = await store?.load(layer.diffId).catch(() => undefined);
    if (known) {
      replayFacts(tree, known, i, name);
      continue;
    }
    if (store === undefined) {
      await applyLayer(tree, layer, i, name, signal);
      continue;
    }
    const facts: EntryFacts[] = [];
    await applyLayer(tree, layer, i, name, signal, (f) => facts.push(f));
    // A cache that cannot be written costs the next build a read, never this build.
    await store.save(layer.diffId, facts).catch(() => {});
  }
  return tree;
}

/**
 * For a layer just packed, whose entries are known: puts its facts in the store and, given
 * `tree` (the merged tree of the layers below, if it was read), makes `below` plus the
 * layer the known tree of the chain, so no build reads the layer back. `tree` is the
 * memo's from then on.
 */
export async function rememberPackedLayer(below: readonly Layer[], layer: Layer, tree: FileTree | undefined, facts: FactList, store: FactsStore | undefined): Promise<void> {
  if (tree !== undefined) {
    const chain = [...below, layer];
    replayFacts(tree, facts, below.length, `new layer ${layer.diffId}`);
    remember(chainKey(chain, chain.length), Promise.resolve(tree));
  }
  await store?.save(layer.diffId, facts).catch(() => {});
}
