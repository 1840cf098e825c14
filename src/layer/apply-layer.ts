import type { Header } from "tar-stream";
import { drain, forEachLayerEntry, type TarEntry } from "./layer-entries.js";
import type { Layer } from "../model/image.js";
import { EMPTY_DIGEST, hasherDigest, isDigest, newHasher, type Digest } from "../model/digest.js";
import { FormatError, IoError } from "../model/errors.js";
import type { LayerEntry } from "./differ.js";
import { classifyEntry } from "../whiteout/index.js";
import type { EntryType } from "./path-tree.js";
import { cleanPath } from "../model/image-path.js";
import type { FileTree, TreeNode } from "./tree.js";

/**
 * Applying one layer to a merged tree: each entry becomes a node (regular files hashed as
 * they stream), whiteouts delete from the layers below, as the OCI spec says. What a layer
 * says (its "facts") is the same whether read from its tar or known from packing it, and
 * can be kept (by diffId, which names the layer's content) and replayed without the tar.
 */

/** What reading a layer's tar learned, entry by entry, to replay it without reading it again. */
export type LayerFacts = readonly EntryFacts[];

/**
 * What a layer says, read by index: an array of facts (LayerFacts is one), or, for a layer
 * just packed, a view that makes an entry's facts when asked (packedFacts), so that they
 * are not held all at once while they are saved: 100,000 entries' facts were 20 MB more of
 * live heap at the end of a build.
 */
export interface FactList {
  readonly length: number;
  at(index: number): EntryFacts | undefined;
}

/**
 * Applies a layer's tar to `tree`, handing what each entry says to `onFact` (for a store to
 * keep) as it goes. Nothing is kept here: the facts of a layer of 800,000 files took about as
 * much memory as the tree itself, for readers (diff, export) that keep none.
 */
export async function applyLayer(
  tree: FileTree, layer: Layer, index: number, layerName: string, signal: AbortSignal | undefined,
  onFact?: (facts: EntryFacts) => void,
): Promise<void> {
  await forEachLayerEntry(layer, layerName, signal, async (entry) => {
    const f = await factsOf(entry, layerName);
    applyFacts(tree, f, index, layerName);
    onFact?.(f);
  });
}

/** Applies what a layer says, known from an earlier read or from packing it. */
export function replayFacts(tree: FileTree, facts: FactList, index: number, layerName: string): void {
  for (let i = 0; i < facts.length; i++) applyFacts(tree, facts.at(i)!, index, layerName);
}

const TAR_TYPES: Partial<Record<string, EntryType>> = {
  "file": "file",
  "contiguous-file": "file",
  "link": "hardlink",
  "symlink": "symlink",
  "directory": "dir",
  "character-device": "char",
  "block-device": "block",
  "fifo": "fifo",
};

/** tar-stream decodes ustar fields but leaves PAX overrides of owner and time in `pax`. */
function paxNumber(header: Header, key: string, fallback: number): number {
  const raw = (header.pax as Record<string, string> | null | undefined)?.[key];
  const n = raw === undefined ? NaN : Math.floor(Number(raw));
  return Number.isFinite(n) ? n : fallback;
}

/** What one layer entry says, however it was read: from a tar header, or from the entries gantry just packed. */
export interface EntryFacts {
  /** The entry's name as written (cleaned and classified here). */
  name: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  linkname: string | undefined;
  devmajor: number | undefined;
  devminor: number | undefined;
  /** A regular file's size and content digest. */
  content: { size: number; digest: Digest } | undefined;
}

/** Applies one entry: a whiteout or opaque marker deletes from the layers below; anything else becomes a node. */
function applyFacts(tree: FileTree, e: EntryFacts, layerIndex: number, layerName: string): void {
  const meaning = classifyEntry(e.name, `an entry of ${layerName}`);
  if (meaning.kind === "whiteout") tree.deleteLower(meaning.deleted, layerIndex);
  else if (meaning.kind === "opaque") tree.hideLowerChildren(meaning.dir, layerIndex);
  if (meaning.kind !== "plain" || meaning.path === "") return;
  // A file's node is made with its digest in one literal: added after, the digest costs
  // another property store per file (a tree holds hundreds of thousands).
  const node: TreeNode = e.content
    ? { type: e.type, mode: e.mode & 0o7777, uid: e.uid, gid: e.gid, size: e.content.size, mtime: e.mtime, layerIndex, contentDigest: e.content.digest }
    : { type: e.type, mode: e.mode & 0o7777, uid: e.uid, gid: e.gid, size: 0, mtime: e.mtime, layerIndex };
  if (e.type === "symlink") node.linkname = e.linkname ?? "";
  if (e.type === "hardlink") linkToTarget(tree, node, cleanPath(e.linkname ?? "", `the hardlink target of ${JSON.stringify(e.name)} in ${layerName}`));
  if (e.type === "char" || e.type === "block") {
    node.devmajor = e.devmajor ?? 0;
    node.devminor = e.devminor ?? 0;
  }
  tree.set(meaning.path, node);
}

/** What every empty file holds: one object, one digest string, shared. */
const EMPTY_FILE = { size: 0, digest: EMPTY_DIGEST } as const;

async function factsOf(entry: TarEntry, layerName: string): Promise<EntryFacts> {
  const h = entry.header;
  const type = TAR_TYPES[h.type ?? "file"];
  if (type === undefined) {
    await drain(entry);
    classifyEntry(h.name, `an entry of ${layerName}`); // an escaping name is the worse fault, and said first
    throw new FormatError(`${JSON.stringify(h.name)} in ${layerName} has tar entry type ${String(h.type)}, which container layers do not use; the layer is malformed`);
  }
  let content: EntryFacts["content"];
  if (type === "file" && h.size === 0) {
    await drain(entry);
    content = EMPTY_FILE;
  } else if (type === "file") {
    const hash = newHasher();
    let size = 0;
    for await (const chunk of entry as AsyncIterable<Buffer>) {
      hash.update(chunk);
      size += chunk.length;
    }
    content = { size, digest: hasherDigest(hash) };
  } else {
    await drain(entry);
  }
  return {
    name: h.name,
    type,
    mode: h.mode ?? 0,
    uid: paxNumber(h, "uid", h.uid ?? 0),
    gid: paxNumber(h, "gid", h.gid ?? 0),
    mtime: paxNumber(h, "mtime", Math.floor((h.mtime?.getTime() ?? 0) / 1000)),
    linkname: h.linkname ?? undefined,
    devmajor: type === "char" || type === "block" ? h.devmajor ?? 0 : undefined,
    devminor: type === "char" || type === "block" ? h.devminor ?? 0 : undefined,
    content,
  };
}

/**
 * What a layer gantry has just packed says, with the content digest of each regular file as
 * the tar writer hashed it: the same facts reading the layer back would give.
 */
export function packedFacts(entries: readonly LayerEntry[], digests: ReadonlyMap<string, Digest>, layerName: string): FactList {
  for (const e of entries) {
    if (e.type === "file" && !digests.has(e.path)) throw new IoError(`the content digest of ${e.path} in ${layerName} was not recorded while it was packed`);
  }
  const factsOf = (e: LayerEntry): EntryFacts => ({
    name: e.path, type: e.type, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime,
    linkname: e.linkname, devmajor: e.devmajor, devminor: e.devminor,
    content: e.type === "file" ? { size: e.size, digest: digests.get(e.path)! } : undefined,
  });
  return { length: entries.length, at: (index) => { const e = entries[index]; return e && factsOf(e); } };
}

/** One fact as a fixed-order array, compact to store and quick to read back. */
export type FactRecord = [
  name: string, type: EntryType, mode: number, uid: number, gid: number, mtime: number,
  linkname: string | null, devmajor: number | null, devminor: number | null, size: number | null, digest: Digest | null,
];

/** One fact as a record, for a facts store to keep; factsFromRecords reads a layer's back. */
export function factRecord(f: EntryFacts): FactRecord {
  return [f.name, f.type, f.mode, f.uid, f.gid, f.mtime, f.linkname ?? null, f.devmajor ?? null, f.devminor ?? null, f.content?.size ?? null, f.content?.digest ?? null];
}

const ENTRY_TYPES: ReadonlySet<string> = new Set(["file", "dir", "symlink", "hardlink", "char", "block", "fifo"]);

/**
 * Every field of the right type: facts may come from another machine (a registry cache
 * record), and what they say becomes tree nodes the differ trusts.
 */
function isFactRecord(r: unknown): r is FactRecord {
  if (!Array.isArray(r) || r.length !== 11) return false;
  const [name, type, mode, uid, gid, mtime, linkname, devmajor, devminor, size, digest] = r as unknown[];
  const whole = (n: unknown): boolean => Number.isSafeInteger(n) && (n as number) >= 0;
  const wholeOrNull = (n: unknown): boolean => n === null || whole(n);
  return typeof name === "string" && ENTRY_TYPES.has(type as string) && whole(mode) && whole(uid) && whole(gid) && Number.isFinite(mtime)
    && (linkname === null || typeof linkname === "string") && wholeOrNull(devmajor) && wholeOrNull(devminor)
    && ((size === null && digest === null) || (whole(size) && isDigest(digest)));
}

/** Facts from records made by `factRecord`; undefined when they are not such records. */
export function factsFromRecords(records: unknown): LayerFacts | undefined {
  if (!Array.isArray(records)) return undefined;
  const facts: EntryFacts[] = [];
  for (const r of records as unknown[]) {
    if (!isFactRecord(r)) return undefined;
    const [name, type, mode, uid, gid, mtime, linkname, devmajor, devminor, size, digest] = r;
    facts.push({
      name, type, mode, uid, gid, mtime,
      linkname: linkname ?? undefined, devmajor: devmajor ?? undefined, devminor: devminor ?? undefined,
      content: size !== null && digest !== null ? { size, digest } : undefined,
    });
  }
  return facts;
}

/** A hardlink shares its target's inode: it takes the target's content, size, mode and owner. */
function linkToTarget(tree: FileTree, node: TreeNode, target: string): void {
  node.linkname = target;
  const t = tree.get(target);
  if (t === undefined || (t.type !== "file" && t.type !== "hardlink")) return;
  node.size = t.size;
  node.mode = t.mode;
  node.uid = t.uid;
  node.gid = t.gid;
  if (t.contentDigest !== undefined) node.contentDigest = t.contentDigest;
}

