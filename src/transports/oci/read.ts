import { FormatError, InvalidReferenceError, ImageNotFoundError } from "../../model/errors.js";
import type { ImageOrIndex, ImageSummary } from "../../model/image.js";
import { MediaType } from "../../model/mediatypes.js";
import type { Descriptor } from "../../model/oci.js";
import { sniffCompression } from "../../compression/compression.js";
import { readDescribed, type BlobReader } from "../../image/image.js";
import { parseManifestDocument } from "../../image/parse.js";
import type { FileBag } from "../../archive/file-bag.js";
import { matchesRepoTag, parseRepoTag } from "../image-name.js";
import { describeCandidates } from "../pick.js";
import { ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, OCI_INDEX_FILE, OCI_LAYOUT_FILE, blobPath } from "./names.js";

/**
 * OCI image layout, as a directory or a tar of one (the same reader over a FileBag):
 * `oci-layout`, `index.json`, `blobs/sha256/HEX`. The entry a reference names is read as
 * the layout holds it, an image or an index (choosing a platform is the caller's); every
 * document is checked against its descriptor and every blob as it is read.
 */

/** Which entry of a layout's index to read; with several entries and nothing set, reading refuses (InvalidReferenceError). */
export interface LayoutSelection {
  /** `org.opencontainers.image.ref.name` of the wanted entry (oci:DIR:REF). */
  refName?: string | undefined;
  /** NAME[:TAG], matched against the entries' names when no refName is given. */
  pick?: string | undefined;
  /** Several entries and nothing to choose by: take the first rather than refuse. */
  firstOfMany?: boolean | undefined;
}

/** Blobs of a layout, by digest, as the image model reads them. */
export function layoutReader(bag: FileBag): BlobReader {
  const present = async (desc: Descriptor): Promise<string> => {
    const name = blobPath(desc.digest);
    if (!(await bag.has(name))) {
      const foreign = desc.urls !== undefined && desc.urls.length > 0;
      throw new FormatError(`${bag.describe(name)} is missing${foreign ? " (a foreign layer, kept at its URLs)" : ""}; the layout is incomplete`);
    }
    return name;
  };
  const small = async (desc: Descriptor): Promise<Buffer> => bag.readBytes(await present(desc));
  return {
    where: (desc) => bag.describe(blobPath(desc.digest)),
    readManifest: small,
    readBlob: small,
    openBlob: async (desc, signal) => bag.open(await present(desc), signal),
    sniffLayer: async (desc) => sniffCompression(await bag.head(await present(desc), 4)),
  };
}

/** The layout's own index (index.json), its entries checked as descriptors. */
export async function readTopIndex(bag: FileBag): Promise<readonly Descriptor[]> {
  if (!(await bag.has(OCI_LAYOUT_FILE))) {
    throw new FormatError(`${bag.label} is not an OCI image layout: it has no ${OCI_LAYOUT_FILE} file`);
  }
  const doc = parseManifestDocument(await bag.readBytes(OCI_INDEX_FILE), MediaType.ociIndex, bag.describe(OCI_INDEX_FILE));
  if (doc.kind !== "index") throw new FormatError(`${bag.describe(OCI_INDEX_FILE)} is not an image index; the layout is damaged`);
  return doc.index.manifests;
}

/** The names an index entry gives its image: the containerd name, or a ref name that is a full NAME:TAG. */
export function repoTagsOf(desc: Descriptor): string[] {
  const annotations = desc.annotations ?? {};
  const full = annotations[ANNOTATION_CONTAINERD_NAME];
  if (full !== undefined) return [full];
  const ref = annotations[ANNOTATION_REF_NAME];
  if (ref !== undefined && ref.includes(":")) {
    try {
      parseRepoTag(ref, "the ref name");
      return [ref];
    } catch {
      return [];
    }
  }
  return [];
}

function refNameOf(desc: Descriptor): string | undefined {
  return desc.annotations?.[ANNOTATION_REF_NAME];
}

function entryLabel(desc: Descriptor): string {
  const ref = refNameOf(desc);
  return ref !== undefined ? `ref ${ref}` : `an unnamed ${desc.mediaType === MediaType.ociIndex || desc.mediaType === MediaType.dockerManifestList ? "index" : "image"} ${desc.digest}`;
}

/** The entry a selection names, or an error that lists what the layout holds. */
export function selectEntry(entries: readonly Descriptor[], source: string, sel: LayoutSelection): Descriptor {
  const holds = (): string => entries.map(entryLabel).join(", ") || "nothing";
  if (sel.refName !== undefined) {
    const found = entries.find((d) => refNameOf(d) === sel.refName);
    if (!found) throw new ImageNotFoundError(`${source} has no image with ref name "${sel.refName}"; it has: ${holds()}`);
    return found;
  }
  if (sel.pick !== undefined) {
    const pick = sel.pick;
    const found = entries.find((d) => matchesRepoTag(repoTagsOf(d), pick)) ?? entries.find((d) => refNameOf(d) === pick);
    if (!found) {
      const candidates = entries.map((d) => ({ repoTags: repoTagsOf(d), untaggedLabel: entryLabel(d) }));
      throw new ImageNotFoundError(`${source} holds no image named "${pick}"; it holds: ${describeCandidates(candidates)}`);
    }
    return found;
  }
  const [first, ...others] = entries;
  if (first === undefined) throw new FormatError(`${source} holds no image`);
  if (others.length > 0 && !sel.firstOfMany) {
    throw new InvalidReferenceError(`${source} holds ${entries.length} images and the reference names none; add :REF to choose one of: ${holds()}`);
  }
  return first;
}

/** The image or index a selection names in the layout. */
export async function readLayout(bag: FileBag, source: string, sel: LayoutSelection, signal?: AbortSignal): Promise<ImageOrIndex> {
  const entry = selectEntry(await readTopIndex(bag), source, sel);
  return readDescribed(layoutReader(bag), entry, repoTagsOf(entry), signal);
}

/** One summary per entry of the layout's index, named by its image names, else its ref name. */
export async function listLayout(bag: FileBag): Promise<ImageSummary[]> {
  return (await readTopIndex(bag)).map((d) => {
    const ref = refNameOf(d);
    const tags = repoTagsOf(d);
    return { repoTags: tags.length === 0 && ref !== undefined ? [ref] : tags, digest: d.digest, mediaType: d.mediaType };
  });
}
