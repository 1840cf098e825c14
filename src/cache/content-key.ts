import { digestHex, hasherDigest, newHasher, type Digest } from "../model/digest.js";
import type { Compression } from "../model/mediatypes.js";
import { DEFAULT_GZIP_LEVEL, DEFAULT_ZSTD_LEVEL } from "../compression/compression.js";
import type { PermRule } from "../layer/differ.js";
import { type SourceNode, type SourceSpec, type SourceTree, type StatVisitor } from "../layer/sources.js";
import { compressorEngine, gantryVersion } from "./versions.js";
import { contentDigests, walkAndPrehash, type KeyWalk, type Prehashed } from "./content-digests.js";
import type { StatIndex } from "./stat-index.js";

/**
 * A new layer's content key: a hash of everything that decides its bytes and of nothing
 * else, so the same spec over the same files gives the same key on every machine (two
 * checkouts at different paths, files copied with new times), and the key can name the
 * layer in a cache other machines share (the local layer index, a registry cache).
 *
 * The key hashes:
 * - KEY_FORMAT, gantry's version and the compressor's library version, so a release whose
 *   tar writer or compressor writes other bytes does not reuse old blobs;
 * - the diffIds of every layer the new one is compared with: they fix the merged tree below;
 * - the layer's recipe: the sources' image destinations, perms, owner, mtime, compression
 *   and its effective level;
 * - every walked entry in path order: its image path and all of its node (type, mode,
 *   size, link target, device numbers, hardlink group, owners when kept) but the host path,
 *   and for a regular file the sha256 of its bytes.
 *
 * Never in it: a host path, a host time (the spec's mtime stands for every entry), an
 * inode, a host or user name. Content digests come from the stat index (stat-index.ts), so
 * a warm machine reads no file to make a key and a fresh one reads each file once.
 */

/** Entry lines joined into one update of the key's hash. */
const LINES_PER_UPDATE = 256;

/** Bump when the layer bytes gantry makes from the same inputs change. */
export const KEY_FORMAT = "gantry layer key 4 (content)";

/** What decides a new layer's bytes, besides the files its sources hold. */
export interface LayerRecipe {
  /** diffIds of every layer below this one, base first. */
  below: readonly Digest[];
  /** The copyToRoot sources, walked in order (their host `from` paths are not part of the key). */
  sources: readonly SourceSpec[];
  perms: readonly PermRule[];
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  /** Seconds since the epoch, for every entry. */
  mtime: number;
  compression: Compression;
  /** The compressor's level; its default when absent. */
  level?: number;
}

/** A new layer's content key, with what making it learnt about the sources. */
export interface LayerKey {
  /** 64 hex digits. */
  hex: string;
  /** The walk the key was made from, for the layer's content on a miss (one walk per build). */
  walked: SourceTree;
  /** The content digest of each regular file the key holds, by host path: what packing must find again. */
  digests: ReadonlyMap<string, Digest>;
  /** Files that had to be read to make the key (none on a warm machine; those packing read are not counted). */
  hashed: number;
}

/**
 * Walks sources for a key: lstat only, with each file's fingerprint for the stat index;
 * with the index, the files it cannot vouch for are hashed while the walk goes on, or, with
 * `deferHashing`, left for packing to read (keyOfWalk's `learnt`).
 */
export async function walkForKey(sources: readonly SourceSpec[], opts: { signal?: AbortSignal | undefined; stat?: StatIndex | undefined; onStat?: StatVisitor | undefined; deferHashing?: boolean } = {}): Promise<KeyWalk> {
  return walkAndPrehash(sources, opts.stat, opts.signal, opts.onStat, opts.deferHashing);
}

/** How a key is made: with the stat index (none: every file is read), and the hashing a walk began. */
export interface KeyOptions {
  stat?: StatIndex | undefined;
  signal?: AbortSignal | undefined;
  /** The hashing the walk started (walkForKey). */
  prehashed?: Prehashed | undefined;
  /** With a walk that deferred its hashing: the digests packing learnt, by image path (the tree's). */
  learnt?: ReadonlyMap<string, Digest> | undefined;
}

/** Walks the recipe's sources and hashes everything into a key. */
export async function layerKey(recipe: LayerRecipe, opts: KeyOptions = {}): Promise<LayerKey> {
  const walked = await walkForKey(recipe.sources, opts);
  return keyOfWalk(recipe, walked.tree, { ...opts, prehashed: walked.prehashed });
}

/**
 * The key of a recipe over sources already walked (`tree` may be part of a walk: the units
 * of one `maxLayers` layer). It uses up the tree's fingerprints: they are cleared once the key is made.
 */
export async function keyOfWalk(recipe: LayerRecipe, tree: SourceTree, opts: KeyOptions = {}): Promise<LayerKey> {
  const { digests, hashed } = await contentDigests(tree, recipe.sources, opts.stat, opts.signal, opts.prehashed, opts.learnt);
  const hash = newHasher();
  hash.update(`${recipeText(recipe)}\n`);
  // Lines go to the hash LINES_PER_UPDATE at a time: one native call per entry cost more than the hashing.
  let lines: string[] = [];
  for (const [path, node] of tree.entries()) {
    lines.push(entryLine(path, node, node.type === "file" && node.hostPath !== undefined ? digests.get(node.hostPath) : undefined));
    if (lines.length === LINES_PER_UPDATE) {
      hash.update(lines.join(""));
      lines = [];
    }
  }
  hash.update(lines.join(""));
  // The fingerprints were for the key alone (the stat index has what it needs of them); the
  // tree is kept to pack the layer, and they would stay with it: a quarter of the walk's memory.
  tree.fingerprints.clear();
  return { hex: digestHex(hasherDigest(hash)), walked: tree, digests, hashed };
}

/**
 * The part of a key that is not the walked entries: the format, the versions and the
 * recipe, as canonical JSON (host paths excluded).
 */
export function recipeText(recipe: LayerRecipe): string {
  return JSON.stringify(canonical({
    format: KEY_FORMAT,
    gantry: gantryVersion(),
    engine: compressorEngine(recipe.compression),
    below: recipe.below,
    destinations: recipe.sources.map((s) => s.to),
    perms: recipe.perms,
    owner: { uid: recipe.uid, gid: recipe.gid, uname: recipe.uname, gname: recipe.gname },
    mtime: recipe.mtime,
    compression: recipe.compression,
    level: effectiveLevel(recipe.compression, recipe.level),
  }));
}

/** Every field of a walked node but its host path, in a fixed order (the check below keeps the list whole). */
const KEYED_FIELDS = ["type", "mode", "size", "linkname", "devmajor", "devminor", "hardlinkGroup", "synthetic", "uid", "gid"] as const;
type Unkeyed = Exclude<keyof SourceNode, (typeof KEYED_FIELDS)[number] | "hostPath">;
const everyFieldKeyed: [Unkeyed] extends [never] ? true : never = true;
void everyFieldKeyed;

/**
 * One entry of the key: NUL-separated fields (no path, link target or name can hold a NUL),
 * written by hand rather than as JSON because a key hashes tens of thousands of them.
 */
function entryLine(path: string, node: SourceNode, content: Digest | undefined): string {
  const fields: unknown[] = [path];
  for (const field of KEYED_FIELDS) fields.push(node[field] ?? "");
  fields.push(content ?? "");
  return `${fields.join("\0")}\n`;
}

/** Objects with their keys sorted, recursively, so the JSON of equal values is equal. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === "object") {
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) sorted[key] = canonical(v);
    }
    return sorted;
  }
  return value;
}

function effectiveLevel(compression: Compression, level: number | undefined): number | null {
  if (compression === "none") return null;
  return level ?? (compression === "gzip" ? DEFAULT_GZIP_LEVEL : DEFAULT_ZSTD_LEVEL);
}
