import { readdir, stat, writeFile } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";
import { digestHex } from "../../model/digest.js";
import { FormatError, InvalidReferenceError, ioError } from "../../model/errors.js";
import type { ImageOrIndex } from "../../model/image.js";
import type { Descriptor } from "../../model/oci.js";
import { sniffCompression } from "../../compression/compression.js";
import { DirBag, type FileBag } from "../../archive/file-bag.js";
import { openBag } from "../../archive/open.js";
import { readDocument, type BlobReader } from "../../image/image.js";
import { writeDirAtomically } from "../../util/atomic.js";
import { blobsMeter, planLayout, writeBlobFile } from "../layout-plan.js";
import type { ProgressListener } from "../../model/progress.js";
import { invalidReference } from "../path-reference.js";
import type { Transport, WriteItem, WriteResult } from "../transport.js";

/**
 * `dir:PATH`: skopeo's directory layout. `manifest.json` is the image's manifest (or
 * index) byte for byte, `version` says the layout's version, every blob is a file named by
 * its hex digest, and an index's own manifests are `HEX.manifest.json`. It holds one image
 * (or one index) and no names.
 */
export interface DirReference {
  readonly path: string;
}

const MANIFEST_FILE = "manifest.json";
const VERSION_FILE = "version";
const VERSION = Buffer.from("Directory Transport Version: 1.1\n");

function instanceManifestName(desc: Descriptor): string {
  return `${digestHex(desc.digest)}.manifest.json`;
}

function dirReader(bag: FileBag): BlobReader {
  const present = async (name: string): Promise<string> => {
    if (!(await bag.has(name))) throw new FormatError(`${bag.describe(name)} is missing; the dir: layout is incomplete`);
    return name;
  };
  return {
    where: (desc) => bag.describe(digestHex(desc.digest)),
    readManifest: async (desc) => bag.readBytes(await present(instanceManifestName(desc))),
    readBlob: async (desc) => bag.readBytes(await present(digestHex(desc.digest))),
    openBlob: async (desc, signal) => bag.open(await present(digestHex(desc.digest)), signal),
    sniffLayer: async (desc) => sniffCompression(await bag.head(await present(digestHex(desc.digest)), 4)),
  };
}

async function readDir(ref: DirReference, signal?: AbortSignal): Promise<ImageOrIndex> {
  const bag = await openBag(ref.path, `dir:${ref.path}`, "dir", signal);
  if (!(await bag.has(MANIFEST_FILE))) throw new FormatError(`${ref.path} is not a dir: image layout: it has no ${MANIFEST_FILE}`);
  return readDocument(dirReader(bag), { bytes: await bag.readBytes(MANIFEST_FILE), what: bag.describe(MANIFEST_FILE) }, signal);
}

/** Writes the one item: the top manifest as manifest.json, an index's manifests by digest, every blob by hex. */
async function writeDir(ref: DirReference, items: readonly WriteItem[], signal?: AbortSignal, onProgress?: ProgressListener): Promise<WriteResult> {
  const [item, ...more] = items;
  if (item === undefined || more.length > 0) {
    throw new InvalidReferenceError(`dir:${ref.path} holds one image, but ${items.length} were given; write each to its own directory`);
  }
  const plan = await planLayout([{ doc: item.doc, repoTags: [] }], signal ? { signal } : {});
  const manifests = new Set(await manifestDigestsOf(item.doc, signal));
  let bytes = 0;
  await writeDirAtomically(ref.path, async (tmp) => {
    const blobs = plan.blobs.filter((blob) => blob.digest !== item.doc.digest);
    const meter = blobsMeter(blobs, `dir:${ref.path}`, onProgress);
    for (const blob of blobs) {
      const name = manifests.has(blob.digest) ? `${digestHex(blob.digest)}.manifest.json` : digestHex(blob.digest);
      bytes += await writeBlobFile(join(tmp, name), blob, signal, meter);
    }
    meter.end();
    await writeFile(join(tmp, MANIFEST_FILE), item.doc.manifestBytes, { mode: 0o644 });
    await writeFile(join(tmp, VERSION_FILE), VERSION, { mode: 0o644 });
    bytes += item.doc.manifestBytes.length + VERSION.length;
  });
  return { digests: [item.doc.digest], bytes };
}

/** The digests of every manifest and index below `doc` (not `doc` itself). */
async function manifestDigestsOf(doc: ImageOrIndex, signal?: AbortSignal): Promise<string[]> {
  if (doc.kind === "image") return [];
  const out: string[] = [];
  for (const desc of doc.manifests) {
    out.push(desc.digest, ...await manifestDigestsOf(await doc.child(desc, signal), signal));
  }
  return out;
}

async function isDirLayout(path: string): Promise<boolean> {
  const st = await stat(path).catch(() => undefined);
  if (!st?.isDirectory()) return false;
  const bag = new DirBag(path);
  return (await bag.has(VERSION_FILE)) && (await bag.has(MANIFEST_FILE));
}

/** The `dir:PATH` transport (see DirReference): one image or index, no names; never recognised for writing. */
export const dirTransport: Transport<DirReference> = {
  name: "dir",
  prefix: "dir:",
  holdsIndexes: true,
  parse(body, spelled) {
    if (body === "") throw invalidReference(spelled, "it names no directory; write it as dir:PATH");
    return { path: body };
  },
  relativeTo: (body, dir) => (isAbsolute(body) ? body : resolve(dir, body)),
  format: (ref) => `dir:${ref.path}`,
  read: (ref, opts) => readDir(ref, opts.signal),
  async list(ref, opts) {
    const doc = await readDir(ref, opts.signal);
    return [{ repoTags: [], digest: doc.digest, mediaType: doc.mediaType }];
  },
  write: (ref, items, opts) => writeDir(ref, items, opts.signal, opts.onProgress),
  /** An existing directory is replaced only when it is empty or a dir: layout, as skopeo does. */
  async checkWritable(ref) {
    const st = await stat(ref.path).catch(() => undefined);
    if (!st) return;
    if (!st.isDirectory()) throw invalidReference(`dir:${ref.path}`, "it exists and is not a directory");
    const names = await readdir(ref.path).catch((err: unknown) => { throw ioError(`the directory ${ref.path}`, err); });
    if (names.length > 0 && !(await isDirLayout(ref.path))) {
      throw invalidReference(`dir:${ref.path}`, "the directory is not empty and not a dir: layout (no version file); name an empty or new directory");
    }
  },
  async recognize(path, mode) {
    return mode === "read" && (await isDirLayout(path)) ? { path } : undefined;
  },
};
