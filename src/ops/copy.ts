import { join } from "node:path";
import { blobLocationsIn } from "../cache/blob-locations.js";
import { BlobStore } from "../cache/blob-store.js";
import { defaultCacheDir } from "../cache/location.js";
import type { Digest } from "../model/digest.js";
import { InvalidReferenceError } from "../model/errors.js";
import { formatPlatform } from "../model/platform.js";
import type { ImageOrIndex } from "../model/image.js";
import { convertDocument } from "../image/image.js";
import type { ManifestFamily } from "../image/manifest.js";
import { imageForPlatform, wantedPlatform } from "../image/select.js";
import { resolveReference, type ImageReference } from "../transports/reference.js";
import { DOCKER_TRANSPORT } from "../transports/docker/reference.js";
import { accessOf, type AccessOptions, type WriteOptions, type WriteResult } from "../transports/transport.js";
import { readSource } from "./source.js";

export type { AccessOptions as RegistryAccess } from "../transports/transport.js";

/**
 * Copying between any two references (pull and push are copies with a registry at one
 * end). What is read is written as it is, so a manifest or index keeps its bytes and digest
 * wherever the destination can hold it; it is converted only when asked (`format`) or
 * when the destination cannot take it as it is, and that is said on the progress listener.
 */

/** `--format`: the manifest family written, spelled as skopeo spells it. */
export type ManifestFormat = "oci" | "v2s2";

/** What copyImage copies and where to; the network, credentials and progress come from AccessOptions. */
export interface CopyImageOptions extends AccessOptions {
  /** Any readable reference. */
  src: string;
  /** Any writable reference. */
  dest: string;
  /** Every platform of an index, the index kept; without it, one image (`platform`, else the host's). */
  all?: boolean;
  /** `os/arch[/variant]` picked from an index; the host's by default. */
  platform?: string;
  /** Write manifests in this family (converting those that are not). */
  format?: ManifestFormat;
  /** NAME[:TAG] of one image of a multi-image source. */
  pick?: string;
  /** For a registry destination: gzip uncompressed layers (default true). */
  compressLayers?: boolean;
  /** For a registry destination: blobs above this many bytes go in chunks. */
  chunkThreshold?: number;
  /** Where `-` writes; standard output when absent. */
  output?: WriteOptions["output"];
  /** The cache directory, whose book of blob locations lets a push mount what an earlier one sent (default `$GANTRY_CACHE`, …). */
  cacheDir?: string;
  /** Neither read nor write the cache. */
  noCache?: boolean;
}

/** What copyImage read and wrote: the digests on both sides and, for a registry, what became of the blobs. */
export interface CopyImageResult {
  src: string;
  dest: string;
  /** The digest of the manifest (or index) as the destination holds it. */
  manifestDigest: Digest;
  /** The digest the source serves; equal to `manifestDigest` unless the copy converted it. */
  sourceDigest: Digest;
  /** The media type of the manifest (or index) written. */
  mediaType: string;
  /** The config digest (the image ID) of an image; undefined for an index. */
  configDigest: Digest | undefined;
  /** The NAME[:TAG] names the written image carries. */
  repoTags: string[];
  /** For a registry destination: blobs uploaded, already there, mounted. */
  blobs?: { uploaded: number; skipped: number; mounted: number };
}

/** Reads `src` and writes it to `dest`, keeping what it can (see the module comment). */
export async function copyImage(options: CopyImageOptions): Promise<CopyImageResult> {
  const opts = withBlobLocations(options);
  const want = wantedPlatform(opts.platform);
  const dest = await resolveReference(opts.dest, "write");
  await dest.checkWritable(writeOptions(opts));
  const { ref: src, doc: read } = await readSource(opts.src, opts);
  const doc = await forDestination(read, src, dest, want, opts);
  const written = await dest.write([{ doc, repoTags: doc.repoTags }], writeOptions(opts));
  return result(opts.src, opts.dest, read, doc, written);
}

/**
 * The options with the cache's book of blob locations (unless one is given, or the cache
 * is off): registries read and written record where each blob is, and pushes mount from it.
 */
function withBlobLocations<T extends AccessOptions & { cacheDir?: string; noCache?: boolean }>(opts: T): T {
  if (opts.blobLocations || opts.noCache) return opts;
  return { ...opts, blobLocations: blobLocationsIn(opts.cacheDir ?? defaultCacheDir(opts.env)) };
}

/** The document to write: one platform unless --all, in the asked family. */
async function forDestination(
  read: ImageOrIndex, src: ImageReference, dest: ImageReference, want: ReturnType<typeof wantedPlatform>, opts: CopyImageOptions,
): Promise<ImageOrIndex> {
  let doc = read;
  if (doc.kind === "index" && opts.all && !dest.holdsIndexes) {
    throw new InvalidReferenceError(`${dest} holds single-platform images, so the index ${src} cannot be copied whole; drop --all and pick one with --platform, or copy to oci:, oci-archive:, dir: or docker://`);
  }
  if (doc.kind === "index" && !opts.all) {
    doc = await imageForPlatform(doc, want, src.toString(), opts.signal);
    opts.onProgress?.({ step: "platform", message: `${src} is an index of ${read.kind === "index" ? read.manifests.length : 1} images; copying the one for ${formatPlatform(want)} (--all copies the index and every platform)` });
  }
  if (opts.format !== undefined) {
    const family: ManifestFamily = opts.format === "v2s2" ? "docker" : "oci";
    const converted = await convertDocument(doc, family, opts.signal);
    if (converted !== doc) {
      opts.onProgress?.({ step: "convert", message: `the manifest was written as ${opts.format} (${converted.digest}, was ${doc.digest})` });
    }
    doc = converted;
  }
  return doc;
}

function writeOptions(opts: CopyImageOptions): WriteOptions {
  const out: WriteOptions = accessOf(opts);
  if (opts.output) out.output = opts.output;
  if (opts.compressLayers !== undefined) out.compressLayers = opts.compressLayers;
  if (opts.chunkThreshold !== undefined) out.chunkThreshold = opts.chunkThreshold;
  return out;
}

function result(src: string, dest: string, read: ImageOrIndex, doc: ImageOrIndex, written: WriteResult): CopyImageResult {
  const out: CopyImageResult = {
    src,
    dest,
    manifestDigest: written.digests[0] ?? doc.digest,
    sourceDigest: read.kind === "index" && doc.kind === "image" ? doc.digest : read.digest,
    mediaType: doc.mediaType,
    configDigest: doc.kind === "image" ? doc.configDigest : undefined,
    repoTags: [...doc.repoTags],
  };
  if (written.blobs) out.blobs = written.blobs;
  return out;
}

/** What pullImage fetches and where it writes it; blobs pass through the local cache unless `noCache`. */
export interface PullImageOptions extends AccessOptions {
  /** `docker://HOST/REPO[:TAG][@sha256:…]`; the `docker://` may be left out. */
  ref: string;
  /** Any writable reference: a path (docker-archive), `oci:DIR`, `oci-archive:PATH`, `dir:DIR`, `-`. */
  dest: string;
  /** `os/arch[/variant]` picked from a multi-platform image; default the host's. */
  platform?: string;
  /** Every platform of an index, the index kept (for destinations that hold indexes). */
  all?: boolean;
  /** The cache directory (default `$GANTRY_CACHE`, `$XDG_CACHE_HOME/gantry`, `~/.cache/gantry`). */
  cacheDir?: string;
  /** Fetch straight to `dest`, neither reading nor filling the cache. */
  noCache?: boolean;
}

/** What pullImage fetched and wrote. */
export interface PullImageResult {
  /** The reference in full, e.g. "docker://docker.io/library/ubuntu:22.04". */
  ref: string;
  /** The destination as it was given. */
  dest: string;
  /** The manifest digest in the registry (what `@sha256:` pins). */
  manifestDigest: Digest;
  /** The config digest (the image ID) of an image; undefined for an index. */
  configDigest: Digest | undefined;
  repoTags: string[];
  /** Layers of the image pulled (0 for an index). */
  layers: number;
}

/** A registry image (through the cache) into any destination. */
export async function pullImage(options: PullImageOptions): Promise<PullImageResult> {
  const opts = withBlobLocations(options);
  const want = wantedPlatform(opts.platform);
  const src = await resolveReference(withRegistryTransport(opts.ref), "read");
  const dest = await resolveReference(opts.dest, "write");
  const copyOpts: CopyImageOptions = { ...opts, src: opts.ref, dest: opts.dest };
  await dest.checkWritable(writeOptions(copyOpts));
  const cache = opts.noCache ? undefined : new BlobStore(join(opts.cacheDir ?? defaultCacheDir(opts.env), "blobs"));
  const { doc: read } = await readSource(src, { ...opts, ...(cache ? { cache } : {}) });
  const doc = await forDestination(read, src, dest, want, copyOpts);
  opts.onProgress?.({ step: "write", message: `writing ${opts.dest}` });
  await dest.write([{ doc, repoTags: doc.repoTags }], writeOptions(copyOpts));
  return {
    ref: src.toString(),
    dest: opts.dest,
    manifestDigest: doc.digest,
    configDigest: doc.kind === "image" ? doc.configDigest : undefined,
    repoTags: [...doc.repoTags],
    layers: doc.kind === "image" ? doc.layers.length : 0,
  };
}

/** What pushImage sends, and to which registry reference. */
export interface PushImageOptions extends AccessOptions {
  /** Any readable reference. */
  src: string;
  /** `docker://HOST/REPO[:TAG][@sha256:…]`; the `docker://` may be left out. */
  ref: string;
  /** Manifest family; default: the image's own manifest, as it is. */
  format?: ManifestFormat;
  /** NAME[:TAG] of one image of a multi-image source. */
  pick?: string;
  /** `os/arch[/variant]` picked from an index; the host's by default. */
  platform?: string;
  /** Every platform of an index, the index kept. */
  all?: boolean;
  /** Blobs above this many bytes are uploaded in chunks (default 16 MiB). */
  chunkThreshold?: number;
  /** Gzip uncompressed layers before sending them (default true, as skopeo does). */
  compressLayers?: boolean;
  /** The cache directory, whose book of blob locations lets this push mount what an earlier one sent. */
  cacheDir?: string;
  /** Neither read nor write the cache. */
  noCache?: boolean;
}

/**
 * Where pushImage wrote, and what became of the blobs: uploaded, already in the repository, or
 * mounted from a sibling repository.
 */
export interface PushImageResult {
  /** The destination in full, `docker://` included. */
  ref: string;
  /** The digest of the manifest as the registry stored it. */
  digest: Digest;
  uploaded: number;
  skipped: number;
  mounted: number;
}

/** Any source into a registry. */
export async function pushImage(opts: PushImageOptions): Promise<PushImageResult> {
  const dest = withRegistryTransport(opts.ref);
  const copied = await copyImage({ ...opts, src: opts.src, dest });
  const blobs = copied.blobs ?? { uploaded: 0, skipped: 0, mounted: 0 };
  return { ref: (await resolveReference(dest, "write")).toString(), digest: copied.manifestDigest, ...blobs };
}

/** `HOST/REPO:TAG` as pull and push take it: the `docker://` may be left out. */
function withRegistryTransport(ref: string): string {
  return ref.startsWith(DOCKER_TRANSPORT) ? ref : `${DOCKER_TRANSPORT}${ref}`;
}
