import { Readable } from "node:stream";
import type { Digest } from "../../model/digest.js";
import { DigestMismatchError, RegistryError } from "../../model/errors.js";
import type { Image } from "../../model/image.js";
import { RegistryClient } from "./client.js";
import { registryFailure } from "./failure.js";
import { discard } from "./http.js";
import { manifestForPush, type ManifestFormat } from "./manifest.js";
import { formatSize, shortDigest, type RegistryOptions } from "./options.js";
import { locationsOf, registrySourceOf, rememberLocation, type BlobLocation } from "./origin.js";
import { formatReference, parseRegistryReference, type RegistryReference } from "./reference.js";
import { gzipUncompressedLayers } from "./compress.js";
import {
  DEFAULT_CHUNK_SIZE, DEFAULT_CHUNK_THRESHOLD, pushBlob, type BlobOutcome, type BlobToPush,
} from "./upload.js";

export interface PushOptions extends RegistryOptions {
  /** Manifest family; default: the image's own registry manifest if unchanged, else OCI. */
  format?: ManifestFormat;
  /** Blobs above this many bytes are uploaded in chunks (default 16 MiB). */
  chunkThreshold?: number;
  /** Bytes per chunk (default 16 MiB). */
  chunkSize?: number;
  /** Blobs sent at once (default 3). */
  concurrency?: number;
  /** Gzip uncompressed layers before sending them, as skopeo does (default true). */
  compressLayers?: boolean;
}

export interface PushResult {
  /** The digest of the manifest as the registry stored it. */
  digest: Digest;
  /** Blobs (layers and config) sent, found already present, and mounted from a sibling repository. */
  uploaded: number;
  skipped: number;
  mounted: number;
  /** Bytes of the blobs uploaded. */
  bytes: number;
}

const DEFAULT_CONCURRENCY = 3;

/**
 * Pushes `image` to `ref` (`docker://HOST/REPO[:TAG][@sha256:…]`): every blob the repository
 * lacks (config and layers, mounted when a sibling repository has it), then the manifest,
 * whose digest the registry must confirm. A digest in `ref` must be the manifest's.
 * Uncompressed layers are gzipped on the way, unless `compressLayers` is false.
 */
export async function pushImage(image: Image, ref: string, opts: PushOptions = {}): Promise<PushResult> {
  const reference = parseRegistryReference(ref);
  const name = formatReference(reference);
  const describeLayer = (i: number): string => `layer ${i + 1} of ${name}`;
  const prepared = opts.compressLayers === false
    ? { layers: [...image.layers], dispose: async () => {} }
    : await gzipUncompressedLayers(image.layers, describeLayer, opts.signal);
  try {
    const sent: Image = prepared.layers.every((l, i) => l === image.layers[i]) ? image : { ...image, layers: prepared.layers };
    const result = await pushPrepared(sent, reference, opts);
    // Layers sent as they were are now known to live here too: a later push elsewhere mounts them.
    const here: BlobLocation = { registry: reference.registry, repository: reference.repository };
    for (const [i, layer] of image.layers.entries()) if (prepared.layers[i] === layer) rememberLocation(layer, here);
    return result;
  } finally {
    await prepared.dispose();
  }
}

async function pushPrepared(image: Image, reference: RegistryReference, opts: PushOptions): Promise<PushResult> {
  const name = formatReference(reference);
  const manifest = manifestForPush(image, opts.format);
  if (reference.digest !== undefined && reference.digest !== manifest.digest) {
    throw new DigestMismatchError(`the image's manifest hashes to ${manifest.digest}, not the ${reference.digest} named in ${name}; drop the digest from the reference`);
  }
  const client = new RegistryClient(reference.registry, opts);
  const { repository } = reference;
  const settings = {
    chunkThreshold: opts.chunkThreshold ?? DEFAULT_CHUNK_THRESHOLD,
    chunkSize: opts.chunkSize ?? DEFAULT_CHUNK_SIZE,
  };

  const source = registrySourceOf(image);
  const blobs: BlobToPush[] = [
    {
      digest: image.configDigest, size: image.configBytes.length,
      // The config an image was read with lives where its manifest does.
      locations: source ? [{ registry: source.reference.registry, repository: source.reference.repository }] : [],
      describe: `the config of ${name}`, open: () => Promise.resolve(Readable.from([image.configBytes])),
    },
    ...image.layers.map((layer, i): BlobToPush => ({
      digest: layer.digest, size: layer.size, locations: locationsOf(layer),
      describe: `layer ${i + 1} of ${name}`, open: (signal) => layer.open(signal),
    })),
  ];
  const counts: Record<BlobOutcome, number> = { uploaded: 0, skipped: 0, mounted: 0 };
  let bytes = 0;
  await forEachLimited(blobs, opts.concurrency ?? DEFAULT_CONCURRENCY, async (blob) => {
    const outcome = await pushBlob(client, repository, blob, settings);
    counts[outcome]++;
    if (outcome === "uploaded") bytes += blob.size;
    opts.onProgress?.({ step: "push", message: describeOutcome(outcome, blob) });
  });

  const response = await client.request({
    method: "PUT",
    url: `/v2/${repository}/manifests/${reference.tag ?? manifest.digest}`,
    scopes: [{ repository, actions: ["pull", "push"] }],
    headers: { "content-type": manifest.mediaType },
    body: manifest.bytes,
    idempotent: true,
  });
  await discard(response);
  if (response.status !== 201 && response.status !== 200 && response.status !== 202) {
    throw await registryFailure(response, { registry: reference.registry, repository, action: `store the manifest of ${name}` });
  }
  const stored = response.headers.get("docker-content-digest");
  if (stored && stored !== manifest.digest) {
    throw new DigestMismatchError(`${reference.registry} stored the manifest of ${name} as ${stored}, not ${manifest.digest}; it altered the manifest`);
  }
  opts.onProgress?.({ step: "push", message: `pushed ${name} (${manifest.digest})` });
  return { digest: manifest.digest, ...counts, bytes };
}

function describeOutcome(outcome: BlobOutcome, blob: BlobToPush): string {
  const what = `${blob.describe} ${shortDigest(blob.digest)}`;
  return outcome === "skipped" ? `${what} already present`
    : outcome === "mounted" ? `${what} mounted from another repository`
    : `${what} uploaded (${formatSize(blob.size)})`;
}

/** Runs `work` over `items` with at most `limit` at once; the first failure stops new work and is thrown. */
async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  const rejected = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (rejected) throw rejected.reason instanceof Error ? rejected.reason : new RegistryError(String(rejected.reason));
}
