import { join } from "node:path";
import { BlobStore } from "../cache/blob-store.js";
import { defaultCacheDir } from "../cache/location.js";
import { readImage, type ReadOptions } from "../transports/read.js";
import { writeImage } from "../transports/write.js";
import type { Digest } from "../model/digest.js";
import type { Image } from "../model/image.js";
import type { ManifestFormat } from "../transports/docker/manifest.js";
import { readRegistryImage, type PullOptions } from "../transports/docker/pull.js";
import { pushImage as pushToRegistry, type PushOptions, type PushResult } from "../transports/docker/push.js";
import { DOCKER_TRANSPORT, formatReference, isRegistryReference, parseRegistryReference } from "../transports/docker/reference.js";
import { registryOptionsFrom, type RegistryAccess } from "../transports/docker/options.js";
import "../transports/docker/register.js";

export type { RegistryAccess } from "../transports/docker/options.js";

/**
 * The library's registry entry points, one options object each: pull (registry to any
 * destination, through the cache), push (any source to a registry), copy (anything to
 * anything, registries included).
 */


export interface PullImageOptions extends RegistryAccess {
  /** `docker://HOST/REPO[:TAG][@sha256:…]`; the `docker://` may be left out. */
  ref: string;
  /** Any writable reference: a path (docker-archive), `oci:DIR`, `oci-archive:PATH`, `-`. */
  dest: string;
  /** `os/arch[/variant]` picked from a multi-platform image; default the host's. */
  platform?: string;
  /** The cache directory (default `$GANTRY_CACHE`, `$XDG_CACHE_HOME/gantry`, `~/.cache/gantry`). */
  cacheDir?: string;
  /** Fetch straight to `dest`, neither reading nor filling the cache. */
  noCache?: boolean;
}

export interface PullImageResult {
  /** The reference in full, e.g. "docker.io/library/ubuntu:22.04". */
  ref: string;
  dest: string;
  /** The manifest digest in the registry (what `@sha256:` pins). */
  manifestDigest: Digest;
  configDigest: Digest;
  repoTags: string[];
  layers: number;
}

export async function pullImage(opts: PullImageOptions): Promise<PullImageResult> {
  const ref = withTransport(opts.ref);
  const pullOpts: PullOptions = registryOptions(opts);
  if (opts.platform !== undefined) pullOpts.platform = opts.platform;
  if (!opts.noCache) pullOpts.cache = new BlobStore(join(opts.cacheDir ?? defaultCacheDir(opts.env), "blobs"));
  const image = await readRegistryImage(ref, pullOpts);
  opts.onProgress?.({ step: "write", message: `writing ${opts.dest}` });
  await writeImage(opts.dest, [{ image, repoTags: image.repoTags }], opts.signal ? { signal: opts.signal } : {});
  return {
    ref: formatReference(parseRegistryReference(ref)),
    dest: opts.dest,
    manifestDigest: image.registrySource.manifestDigest,
    configDigest: image.configDigest,
    repoTags: [...image.repoTags],
    layers: image.layers.length,
  };
}

export interface PushImageOptions extends RegistryAccess {
  /** Any readable reference, or an Image already in hand. */
  src: string | Image;
  /** `docker://HOST/REPO[:TAG][@sha256:…]`; the `docker://` may be left out. */
  ref: string;
  /** Manifest family; default the source's registry manifest when unchanged, else OCI. */
  format?: ManifestFormat;
  /** NAME[:TAG] of one image of a multi-image source. */
  pick?: string;
  platform?: string;
  /** Blobs above this many bytes are uploaded in chunks (default 16 MiB). */
  chunkThreshold?: number;
  /** Gzip uncompressed layers before sending them (default true, as skopeo does). */
  compressLayers?: boolean;
}

export interface PushImageResult extends PushResult {
  ref: string;
}

export async function pushImage(opts: PushImageOptions): Promise<PushImageResult> {
  const ref = withTransport(opts.ref);
  const image = typeof opts.src === "string" ? await readSource(opts.src, opts) : opts.src;
  const result = await pushToRegistry(image, ref, pushOptions(opts));
  return { ref: formatReference(parseRegistryReference(ref)), ...result };
}

export interface CopyImageOptions extends RegistryAccess {
  /** Any readable reference. */
  src: string;
  /** Any writable reference. */
  dest: string;
  format?: ManifestFormat;
  pick?: string;
  platform?: string;
  /** For a registry destination: gzip uncompressed layers (default true). */
  compressLayers?: boolean;
}

export interface CopyImageResult {
  src: string;
  dest: string;
  /** The manifest digest at the destination (an OCI manifest for files). */
  manifestDigest: Digest;
  configDigest: Digest;
}

/** Reads `src` and writes it to `dest`; registry to registry keeps the manifest unless `format` changes it. */
export async function copyImage(opts: CopyImageOptions): Promise<CopyImageResult> {
  const image = await readSource(opts.src, opts);
  let manifestDigest: Digest;
  if (isRegistryReference(opts.dest)) {
    manifestDigest = (await pushToRegistry(image, opts.dest, pushOptions(opts))).digest;
  } else {
    const written = await writeImage(opts.dest, [{ image, repoTags: [...image.repoTags] }], opts.signal ? { signal: opts.signal } : {});
    manifestDigest = written.manifestDigests[0]!;
  }
  return { src: opts.src, dest: opts.dest, manifestDigest, configDigest: image.configDigest };
}

/** A registry source is read here, with the caller's credentials; anything else by the format readers. */
async function readSource(src: string, opts: RegistryAccess & { pick?: string; platform?: string }): Promise<Image> {
  if (isRegistryReference(src)) {
    const pullOpts: PullOptions = registryOptions(opts);
    if (opts.platform !== undefined) pullOpts.platform = opts.platform;
    return readRegistryImage(src, pullOpts);
  }
  const readOpts: ReadOptions = {};
  if (opts.signal) readOpts.signal = opts.signal;
  if (opts.pick !== undefined) readOpts.pick = opts.pick;
  if (opts.platform !== undefined) readOpts.platform = opts.platform;
  return readImage(src, readOpts);
}

function registryOptions(opts: RegistryAccess): PullOptions {
  return registryOptionsFrom(opts);
}

function pushOptions(opts: RegistryAccess & Pick<PushOptions, "format" | "chunkThreshold" | "compressLayers">): PushOptions {
  const out: PushOptions = registryOptions(opts);
  if (opts.format !== undefined) out.format = opts.format;
  if (opts.chunkThreshold !== undefined) out.chunkThreshold = opts.chunkThreshold;
  if (opts.compressLayers !== undefined) out.compressLayers = opts.compressLayers;
  return out;
}

function withTransport(ref: string): string {
  return isRegistryReference(ref) ? ref : `${DOCKER_TRANSPORT}${ref}`;
}
