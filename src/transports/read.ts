import { stat } from "node:fs/promises";
import { FormatError, ioError, UnsupportedError } from "../model/errors.js";
import type { Image, ImageSummary } from "../model/image.js";
import { DOCKER_MANIFEST, listDockerArchive, readDockerArchive } from "./docker-archive/read.js";
import { LEGACY_REPOSITORIES, listDockerLegacy, readDockerLegacy } from "./docker-archive/legacy.js";
import { DirBag, type FileBag } from "../archive/file-bag.js";
import { OCI_INDEX_FILE } from "./oci/names.js";
import { listOciLayout, readOciLayout } from "./oci/read.js";
import { STDIO, formatImageRef, resolveReference, type ImageRef } from "./reference.js";
import { TarBag } from "../archive/tar-index.js";
import type { RegistryOptions } from "./docker/options.js";

/**
 * Reading any image reference into an `Image`. Archives and directories are opened as
 * FileBags and handed to the format's reader; registries go through a hook the
 * registry module registers, so this module does not depend on it.
 */

export interface ReadOptions {
  signal?: AbortSignal;
  /** NAME[:TAG] of one image of a multi-image source (when the reference names none). */
  pick?: string;
  /** `os/arch[/variant]` for a multi-platform index; the host's when absent. */
  platform?: string;
  /** Credentials, TLS and cache for `docker://` references. */
  registry?: RegistryOptions;
}

export type RegistryReader = (ref: string, opts: ReadOptions) => Promise<Image>;

let registryReader: RegistryReader | undefined;

/** Called once by the registry module, so `docker://` references can be read. */
export function setRegistryReader(fn: RegistryReader): void {
  registryReader = fn;
}

type FileRef = Exclude<ImageRef, { transport: "docker" }>;

/** Opens what a file-based reference names: stdin spooled, a directory, or an indexed tar. */
export async function openBag(ref: FileRef, signal?: AbortSignal): Promise<FileBag> {
  if (ref.path === STDIO && ref.transport === "docker-archive") return TarBag.fromStream(process.stdin, "standard input", signal);
  const st = await stat(ref.path).catch((err: unknown) => { throw ioError(`the image ${formatImageRef(ref)}`, err); });
  if (st.isDirectory()) return new DirBag(ref.path);
  if (ref.transport === "oci") throw new FormatError(`${ref.path} is a file, not an OCI layout directory; read it as oci-archive:${ref.path}`);
  return TarBag.open(ref.path, signal);
}

/** Which reader a docker-archive bag needs: manifest.json, or the legacy `repositories` only. */
async function dockerArchiveKind(bag: FileBag): Promise<"docker-archive" | "legacy"> {
  if (await bag.has(DOCKER_MANIFEST)) return "docker-archive";
  if (await bag.has(LEGACY_REPOSITORIES)) return "legacy";
  if (await bag.has(OCI_INDEX_FILE)) {
    throw new FormatError(`${bag.label} has no manifest.json but an OCI index.json; read it as oci-archive:${bag.label}`);
  }
  throw new FormatError(`${bag.label} is not a docker-archive: it has neither manifest.json nor repositories`);
}

function registry(ref: string): RegistryReader {
  if (!registryReader) throw new UnsupportedError(`reading docker://${ref} needs the registry module, which is not loaded`);
  return registryReader;
}

async function toRef(ref: string | ImageRef): Promise<ImageRef> {
  return typeof ref === "string" ? resolveReference(ref, "read") : ref;
}

export async function readImage(reference: string | ImageRef, opts: ReadOptions = {}): Promise<Image> {
  const ref = await toRef(reference);
  if (ref.transport === "docker") return registry(ref.ref)(ref.ref, opts);
  const bag = await openBag(ref, opts.signal);
  const signal = opts.signal !== undefined ? { signal: opts.signal } : {};
  if (ref.transport === "docker-archive") {
    const pick = ref.name ?? opts.pick;
    const o = { ...signal, ...(pick !== undefined ? { pick } : {}) };
    return (await dockerArchiveKind(bag)) === "legacy" ? readDockerLegacy(bag, o) : readDockerArchive(bag, o);
  }
  return readOciLayout(bag, {
    ...signal,
    ...(ref.refName !== undefined ? { refName: ref.refName } : {}),
    ...(opts.pick !== undefined ? { pick: opts.pick } : {}),
    ...(opts.platform !== undefined ? { platform: opts.platform } : {}),
  });
}

/** What a source holds: one summary per image (per index entry for OCI layouts). */
export async function listImages(reference: string | ImageRef, opts: Pick<ReadOptions, "signal" | "platform"> = {}): Promise<ImageSummary[]> {
  const ref = await toRef(reference);
  if (ref.transport === "docker") {
    const image = await registry(ref.ref)(ref.ref, opts);
    return [{ repoTags: [...image.repoTags], configDigest: image.configDigest }];
  }
  const bag = await openBag(ref, opts.signal);
  if (ref.transport === "docker-archive") {
    return (await dockerArchiveKind(bag)) === "legacy" ? listDockerLegacy(bag, opts.signal) : listDockerArchive(bag);
  }
  return listOciLayout(bag, opts.platform !== undefined ? { platform: opts.platform } : {});
}
