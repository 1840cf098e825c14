import type { Digest } from "../model/digest.js";
import { GantryError, throwIfAborted } from "../model/errors.js";
import type { Layer } from "../model/image.js";
import { applyLayer } from "./apply-layer.js";
import { FileTree } from "./tree.js";

/**
 * The merged tree of a chain of layers, read as seldom as possible: memoized in the process
 * by chain of diffIds, and, with a TreeStore (the cache's tree index), kept across builds,
 * so a layer below a changed one is never decompressed again. A chain's tree is a function
 * of its layers' diffIds alone, which is what makes both caches sound.
 */

/** Where merged trees are kept between processes, by chain of diffIds. */
export interface TreeStore {
  load(chain: readonly Digest[]): Promise<FileTree | undefined>;
  save(chain: readonly Digest[], tree: FileTree): Promise<void>;
}

export interface MergedTreeOptions {
  signal?: AbortSignal | undefined;
  store?: TreeStore | undefined;
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
  const key = chainKey(layers, layers.length);
  for (;;) {
    let pending = chainCache.get(key);
    if (pending === undefined) {
      pending = buildChain(layers, opts.signal, opts.store);
      remember(key, pending);
    }
    try {
      return (await pending).clone();
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

/** The longest prefix of the chain already known, in this process or in the store. */
async function knownPrefix(layers: readonly Layer[], store: TreeStore | undefined): Promise<{ tree: FileTree; start: number }> {
  for (let k = layers.length; k > 0; k--) {
    const memo = k < layers.length ? chainCache.get(chainKey(layers, k)) : undefined;
    if (memo !== undefined) {
      const tree = await memo.catch(() => undefined);
      if (tree) return { tree: tree.clone(), start: k };
    }
    const stored = await store?.load(layers.slice(0, k).map((l) => l.diffId)).catch(() => undefined);
    if (stored) return { tree: stored, start: k };
  }
  return { tree: new FileTree(), start: 0 };
}

async function buildChain(layers: readonly Layer[], signal: AbortSignal | undefined, store: TreeStore | undefined): Promise<FileTree> {
  const known = await knownPrefix(layers, store);
  const { tree, start } = known;
  for (let i = start; i < layers.length; i++) {
    const layer = layers[i];
    if (layer === undefined) continue;
    throwIfAborted(signal);
    await applyLayer(tree, layer, i, `layer ${i + 1} of ${layers.length} (${layer.diffId})`, signal);
  }
  // A cache that cannot be written costs the next build a read, never this build.
  if (start < layers.length) await store?.save(layers.map((l) => l.diffId), tree).catch(() => {});
  return tree;
}

/**
 * Makes `tree` the known merged tree of `layers` (in this process, and in the store): for a
 * layer just packed, whose entries are already known, so no build reads it back to learn them.
 * The tree is the memo's from then on; the caller must not change it.
 */
export async function rememberTree(layers: readonly Layer[], tree: FileTree, store: TreeStore | undefined): Promise<void> {
  // Taken over, not copied: the caller hands the tree on and changes it no more.
  remember(chainKey(layers, layers.length), Promise.resolve(tree));
  await store?.save(layers.map((l) => l.diffId), tree).catch(() => {});
}
