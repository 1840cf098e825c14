import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { digestHex, hasherDigest, isDigest, newHasher, type Digest } from "../model/digest.js";
import { ioError } from "../model/errors.js";
import type { Compression } from "../model/mediatypes.js";
import { writeFileAtomically } from "../util/atomic.js";
import { compressorEngine, gantryVersion } from "./versions.js";
import { DEFAULT_GZIP_LEVEL, DEFAULT_ZSTD_LEVEL } from "../compression/compression.js";
import type { PermRule } from "../layer/differ.js";
import { walkSources, type HostFingerprint, type SourceNode, type SourceSpec, type SourceTree } from "../layer/sources.js";
import type { BlobStore, StoredLayerBlob } from "./blob-store.js";

/**
 * The layer index: `<cache>/layers/<key>.json` maps everything that decides a new layer's
 * bytes (its key) to the blob those inputs gave (`{ digest, diffId, size, compression }`),
 * so a rebuild with unchanged inputs neither walks the base's layers nor packs nor
 * compresses again.
 *
 * The key hashes:
 * - KEY_FORMAT, gantry's version and the compressor's library version, so a release whose
 *   tar writer or compressor writes other bytes does not reuse old blobs;
 * - the diffIds of every layer below (base first, then earlier new layers): they fix the
 *   merged tree the layer is compared with;
 * - the layer's recipe: the sources' image destinations, perms, owner, mtime, compression
 *   and its effective level;
 * - every walked entry in path order: its image path and all of its node (type, mode,
 *   size, link target, device numbers, hardlink group) but the host path it is read from,
 *   and for a regular file the host fingerprint git's index keeps (dev, ino, mode, size,
 *   mtime and ctime in nanoseconds). Content is never read to make a key.
 *
 * Why a fingerprint is enough: every write to a file sets its ctime to the current time,
 * and nobody can set a ctime back (utimes sets mtime, and moves ctime to now). So an
 * edited file, even one of the same size whose mtime was restored, has a new ctime.
 *
 * The exception is git's "racily clean" file: a timestamp has a granularity (the kernel's
 * coarse clock tick, a few milliseconds, or whole seconds on some file systems), and a
 * file changed again within the tick its ctime shows, after we looked at it, keeps that
 * same ctime. That can only happen to a file whose ctime is within one tick of the walk.
 * So the key notes whether some file's ctime is that close to the walk's start (2 s when
 * the ctime has no sub-second part, 100 ms otherwise), and such a key is never recorded:
 * the next build packs the layer again, by then from files that are old enough. A file
 * changed after the walk moves its ctime past anything recorded, so at worst it causes a
 * miss, never a stale hit. (A file system whose clock runs behind this machine's by more
 * than the window defeats the guard, as it defeats git's.)
 *
 * Entries are written to a temporary file and renamed, so concurrent builds never see a
 * partial entry; two builds recording one key write the same content.
 */

/** Bump when the layer bytes gantry makes from the same inputs change. */
export const KEY_FORMAT = "gantry layer index key 3";

/** How close to the walk a ctime must be for a later write to be able to hide in its tick. */
const RACY_WINDOW_NS = 100_000_000n;
/** The same for file systems that stamp whole seconds (FAT's are 2 s apart). */
const RACY_WINDOW_WHOLE_SECONDS_NS = 2_000_000_000n;
const NS_PER_SECOND = 1_000_000_000n;

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

export interface LayerKey {
  /** 64 hex digits. */
  hex: string;
  /** A file changed so shortly before the walk that a later write might not show: do not record. */
  racy: boolean;
  /** The walk the key was made from, for the layer's content on a miss (one walk per build). */
  walked: SourceTree;
}

/** What the index needs of a key to look it up or record it. */
export type IndexKey = Pick<LayerKey, "hex" | "racy">;

/** Sources walked for a key: the tree with host fingerprints, and when the walk began (for the racy rule). */
export interface KeyWalk {
  tree: SourceTree;
  startNs: bigint;
}

/** Walks sources for a key: lstat only, no content read. */
export async function walkForKey(sources: readonly SourceSpec[], signal?: AbortSignal): Promise<KeyWalk> {
  const startNs = BigInt(Date.now()) * 1_000_000n;
  return { tree: await walkSources(sources, { signal, fingerprint: true }), startNs };
}

/** Walks the recipe's sources (lstat only, no content read) and hashes everything into a key. */
export async function layerKey(recipe: LayerRecipe, opts: { signal?: AbortSignal | undefined } = {}): Promise<LayerKey> {
  return keyOfWalk(recipe, await walkForKey(recipe.sources, opts.signal));
}

/**
 * The key of a recipe over sources already walked (`walk.tree` may be part of a walk: the
 * units of one `maxLayers` layer).
 */
export function keyOfWalk(recipe: LayerRecipe, walk: KeyWalk): LayerKey {
  const { tree, startNs: walkStartNs } = walk;
  const hash = newHasher();
  const line = (value: unknown): void => { hash.update(`${JSON.stringify(canonical(value))}\n`); };
  line({
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
  });
  let racy = false;
  for (const [path, node] of tree.entries()) {
    const fingerprint = tree.fingerprints.get(path);
    if (fingerprint !== undefined && isRacy(fingerprint, walkStartNs)) racy = true;
    hash.update(entryLine(path, node, fingerprint));
  }
  return { hex: digestHex(hasherDigest(hash)), racy, walked: tree };
}


function isRacy(fingerprint: HostFingerprint, walkStartNs: bigint): boolean {
  const window = fingerprint.ctimeNs % NS_PER_SECOND === 0n ? RACY_WINDOW_WHOLE_SECONDS_NS : RACY_WINDOW_NS;
  return fingerprint.ctimeNs > walkStartNs - window;
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
function entryLine(path: string, node: SourceNode, f: HostFingerprint | undefined): string {
  const fields: unknown[] = [path];
  for (const field of KEYED_FIELDS) fields.push(node[field] ?? "");
  if (f !== undefined) fields.push(f.dev, f.ino, f.mode, f.size, f.mtimeNs, f.ctimeNs);
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

/** `<cache>/layers`: layer key → stored blob. */
export class LayerIndex {
  constructor(readonly root: string) {}

  pathOf(key: IndexKey): string {
    return join(this.root, `${key.hex}.json`);
  }

  /**
   * The blob recorded for `key`, if the record is readable and the blob is still in
   * `store` with its recorded size; anything else is a miss (a damaged record is simply
   * written again after the layer is packed).
   */
  async lookup(key: IndexKey, store: BlobStore): Promise<StoredLayerBlob | undefined> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(this.pathOf(key), "utf8"));
    } catch {
      return undefined;
    }
    const blob = asStoredLayerBlob(parsed);
    if (blob === undefined) return undefined;
    return (await store.has(blob.digest)) === blob.size ? blob : undefined;
  }

  /** Records `blob` under `key`, atomically; a racy key is not recorded (see above). */
  async record(key: IndexKey, blob: StoredLayerBlob): Promise<boolean> {
    if (key.racy) return false;
    const path = this.pathOf(key);
    const json = JSON.stringify({ digest: blob.digest, diffId: blob.diffId, size: blob.size, compression: blob.compression });
    try {
      await mkdir(this.root, { recursive: true });
    } catch (err) {
      throw ioError(`the layer index directory ${this.root}`, err);
    }
    await writeFileAtomically(path, (temp) => writeFile(temp, `${json}\n`));
    return true;
  }
}

const COMPRESSIONS: readonly string[] = ["gzip", "zstd", "none"] satisfies Compression[];

function asStoredLayerBlob(value: unknown): StoredLayerBlob | undefined {
  if (value === null || typeof value !== "object") return undefined;
  const { digest, diffId, size, compression } = value as Record<string, unknown>;
  if (!isDigest(digest) || !isDigest(diffId)) return undefined;
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) return undefined;
  if (typeof compression !== "string" || !COMPRESSIONS.includes(compression)) return undefined;
  return { digest, diffId, size, compression: compression as Compression };
}
