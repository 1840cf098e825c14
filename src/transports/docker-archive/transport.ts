import { stat } from "node:fs/promises";
import { dirname } from "node:path";
import { FormatError, InvalidReferenceError, ioError } from "../../model/errors.js";
import type { FileBag } from "../../archive/file-bag.js";
import { openBag } from "../../archive/open.js";
import { parseRepoTag } from "../image-name.js";
import { invalidReference, splitPathAndRest, pathRelativeTo } from "../path-reference.js";
import type { ReadOptions, Transport, WriteItem } from "../transport.js";
import { OCI_INDEX_FILE } from "../oci/names.js";
import { listDockerLegacy, readDockerLegacy } from "./legacy.js";
import { DOCKER_MANIFEST, LEGACY_REPOSITORIES } from "./names.js";
import { listDockerArchive, readDockerArchive } from "./read.js";
import { writeDockerArchive } from "./write.js";

/**
 * `docker-archive:PATH[:NAME:TAG]`: a `docker save` / skopeo / nixpkgs tarball (or such a
 * tar unpacked into a directory). `-` is standard input or output. On read, NAME:TAG picks
 * one image of several; on write, it is the one name the image gets.
 */
export interface DockerArchiveReference {
  readonly path: string;
  /** NAME:TAG as docker shows it. */
  readonly name?: string | undefined;
}

const STDIO = "-";

/** Which reader a docker-archive bag needs: manifest.json, or the legacy `repositories` only. */
async function archiveKind(bag: FileBag): Promise<"docker-archive" | "legacy"> {
  if (await bag.has(DOCKER_MANIFEST)) return "docker-archive";
  if (await bag.has(LEGACY_REPOSITORIES)) return "legacy";
  if (await bag.has(OCI_INDEX_FILE)) {
    throw new FormatError(`${bag.label} has no manifest.json but an OCI index.json; read it as oci-archive:${bag.label}`);
  }
  throw new FormatError(`${bag.label} is not a docker-archive: it has neither manifest.json nor repositories`);
}

function label(ref: DockerArchiveReference): string {
  return dockerArchiveTransport.format(ref);
}

async function open(ref: DockerArchiveReference, opts: ReadOptions): Promise<FileBag> {
  return openBag(ref.path, label(ref), "either", opts.signal);
}

/** A name in the reference is the one name of the one image written, as with skopeo. */
function named(ref: DockerArchiveReference, items: readonly WriteItem[]): readonly WriteItem[] {
  if (ref.name === undefined) return items;
  if (items.length !== 1) {
    throw new InvalidReferenceError(`the reference ${label(ref)} names one image, but ${items.length} are being written; drop the name and tag the images instead`);
  }
  return [{ doc: items[0]!.doc, repoTags: [ref.name] }];
}

/** The `docker-archive:PATH[:NAME:TAG]` transport (see DockerArchiveReference); it holds images, not indexes. */
export const dockerArchiveTransport: Transport<DockerArchiveReference> = {
  name: "docker-archive",
  prefix: "docker-archive:",
  holdsIndexes: false,
  parse(body, spelled) {
    if (body === STDIO) return { path: STDIO };
    const { path, rest } = splitPathAndRest(body, spelled, "docker-archive:PATH[:NAME:TAG]");
    if (rest === undefined) return { path };
    return { path, name: parseRepoTag(rest, `the name in the reference "${spelled}"`).familiar };
  },
  relativeTo: pathRelativeTo,
  format(ref) {
    const where = ref.path === STDIO ? "standard input/output" : `docker-archive:${ref.path}`;
    return `${where}${ref.name === undefined ? "" : `:${ref.name}`}`;
  },
  async read(ref, opts) {
    const bag = await open(ref, opts);
    const sel = { pick: ref.name ?? opts.pick, firstOfMany: opts.firstOfMany };
    return (await archiveKind(bag)) === "legacy" ? readDockerLegacy(bag, sel, opts.signal) : readDockerArchive(bag, sel, opts.signal);
  },
  async list(ref, opts) {
    const bag = await open(ref, opts);
    return (await archiveKind(bag)) === "legacy" ? listDockerLegacy(bag, opts.signal) : listDockerArchive(bag, opts.signal);
  },
  write: (ref, items, opts) => writeDockerArchive(ref.path, named(ref, items), {
    signal: opts.signal, onProgress: opts.onProgress, written: opts.writtenArchives, assembly: opts.assembly, ...(opts.output ? { output: opts.output } : {}),
  }),
  archiveFile: (ref) => (ref.path === STDIO ? undefined : ref.path),
  async checkWritable(ref) {
    if (ref.path === STDIO) return;
    const st = await stat(ref.path).catch(() => undefined);
    if (st?.isDirectory()) throw invalidReference(label(ref), "it is a directory; a docker-archive is a file");
    await stat(dirname(ref.path)).catch((err: unknown) => { throw ioError(`the output ${ref.path} cannot be written: its directory ${dirname(ref.path)}`, err); });
  },
  /** Reading: a directory with manifest.json or repositories, or any file (docker load takes compressed ones too). Writing: anything but a directory. */
  async recognize(path, mode) {
    const st = await stat(path).catch(() => undefined);
    if (mode === "write") return st?.isDirectory() ? undefined : { path };
    if (!st) return undefined;
    if (!st.isDirectory()) return { path };
    const bag = await openBag(path, path, "dir");
    return (await bag.has(DOCKER_MANIFEST)) || (await bag.has(LEGACY_REPOSITORIES)) ? { path } : undefined;
  },
};
