import { Readable } from "node:stream";
import { chain } from "../../model/verify.js";
import { meteringStream } from "../../model/progress.js";
import type { Digest } from "../../model/digest.js";
import { DigestMismatchError } from "../../model/errors.js";
import { mapLimited } from "../../util/concurrency.js";
import type { Image, ImageIndex, ImageOrIndex } from "../../model/image.js";
import type { Descriptor } from "../../model/oci.js";
import { remadeImage } from "../../image/image.js";
import { buildIndex, familyOf } from "../../image/manifest.js";
import { RegistryClient } from "./client.js";
import { gzipUncompressedLayers } from "./compress.js";
import { registryFailure } from "./failure.js";
import { discard } from "./http.js";
import { formatSize, shortDigest, type RegistryOptions } from "./options.js";
import { locationsOf, rememberLocation, type BlobLocation } from "./origin.js";
import { formatReference, parseRegistryReference, type RegistryReference } from "./reference.js";
import {
  DEFAULT_CHUNK_SIZE, DEFAULT_CHUNK_THRESHOLD, pushBlob, type BlobOutcome, type BlobToPush,
} from "./upload.js";

/** How pushImage sends: the registry options, and the upload settings. */
export interface PushOptions extends RegistryOptions {
  /** Blobs above this many bytes are uploaded in chunks (default 16 MiB). */
  chunkThreshold?: number;
  /** Bytes per chunk (default 16 MiB). */
  chunkSize?: number;
  /** Blobs sent at once (default 3). */
  concurrency?: number;
  /** Gzip uncompressed layers before sending them, as skopeo does (default true). */
  compressLayers?: boolean;
}

/** What pushImage stored, and what became of the blobs. */
export interface PushResult {
  /** The digest of the manifest (or index) as the registry stored it. */
  digest: Digest;
  /** Blobs (layers and configs) sent, found already present, and mounted from a sibling repository. */
  uploaded: number;
  skipped: number;
  mounted: number;
  /** Bytes of the blobs uploaded. */
  bytes: number;
}

const DEFAULT_CONCURRENCY = 3;

/**
 * Pushes an image or an index to `ref` (`docker://HOST/REPO[:TAG][@sha256:…]`). An image:
 * every blob the repository lacks (mounted when a sibling repository has it), then its
 * manifest, as it is, whose digest the registry must confirm. An index: each of its
 * manifests by digest, then the index itself. A digest in `ref` must be what is stored.
 * Uncompressed layers are gzipped on the way (unless `compressLayers` is false), which
 * makes a new manifest; that is said on the progress listener.
 */
export async function pushImage(doc: ImageOrIndex, ref: string | RegistryReference, opts: PushOptions = {}): Promise<PushResult> {
  const reference = typeof ref === "string" ? parseRegistryReference(ref) : ref;
  const stays = doc.kind === "image" && (opts.compressLayers === false || doc.layers.every((l) => l.compression !== "none"));
  if (reference.digest !== undefined && stays && reference.digest !== doc.digest) {
    throw new DigestMismatchError(`the image's manifest hashes to ${doc.digest}, not the ${reference.digest} named in ${formatReference(reference)}; drop the digest from the reference`);
  }
  const client = new RegistryClient(reference.registry, opts);
  const result = await pushDocument(client, doc, reference, opts);
  opts.onProgress?.({ step: "push", message: `pushed ${formatReference(reference)} (${result.digest})` });
  if (reference.digest !== undefined && reference.digest !== result.digest) {
    throw new DigestMismatchError(`the image stored as ${result.digest} is not the ${reference.digest} named in ${formatReference(reference)}; drop the digest from the reference`);
  }
  return result;
}

type Counts = Omit<PushResult, "digest">;

function emptyCounts(): Counts {
  return { uploaded: 0, skipped: 0, mounted: 0, bytes: 0 };
}

function addCounts(into: Counts, more: Counts): void {
  into.uploaded += more.uploaded;
  into.skipped += more.skipped;
  into.mounted += more.mounted;
  into.bytes += more.bytes;
}

async function pushDocument(client: RegistryClient, doc: ImageOrIndex, reference: RegistryReference, opts: PushOptions): Promise<PushResult> {
  return doc.kind === "index" ? pushIndex(client, doc, reference, opts) : pushOneImage(client, doc, reference, opts);
}

/** Each child by digest, then the index; an index whose children had to change is written anew. */
async function pushIndex(client: RegistryClient, index: ImageIndex, reference: RegistryReference, opts: PushOptions): Promise<PushResult> {
  const counts = emptyCounts();
  const children: Descriptor[] = [];
  for (const desc of index.manifests) {
    const child = await index.child(desc, opts.signal);
    const byDigest: RegistryReference = { registry: reference.registry, repository: reference.repository, digest: child.digest };
    const pushed = await pushDocument(client, child, byDigest, opts);
    addCounts(counts, pushed);
    children.push(pushed.digest === desc.digest ? desc : { ...desc, digest: pushed.digest, size: child.manifestBytes.length });
  }
  const changed = children.some((d, i) => d !== index.manifests[i]);
  let { manifestBytes: bytes, digest, mediaType } = index;
  if (changed) {
    const rebuilt = buildIndex(children, familyOf(index.mediaType), index.indexManifest.annotations);
    ({ bytes, digest, mediaType } = rebuilt);
    opts.onProgress?.({ step: "convert", message: `the index of ${formatReference(reference)} was written anew (${digest}): some of its images changed on the way` });
  }
  await putManifest(client, reference, { bytes, digest, mediaType });
  return { digest, ...counts };
}

async function pushOneImage(client: RegistryClient, image: Image, reference: RegistryReference, opts: PushOptions): Promise<PushResult> {
  const name = formatReference(reference);
  const describeLayer = (i: number): string => `layer ${i + 1} of ${name}`;
  const prepared = opts.compressLayers === false
    ? { layers: [...image.layers], dispose: async () => {} }
    : await gzipUncompressedLayers(image.layers, describeLayer, opts.signal);
  try {
    const recompressed = prepared.layers.some((l, i) => l !== image.layers[i]);
    const sent = recompressed ? remadeImage(image, { layers: prepared.layers }) : image;
    if (recompressed) {
      opts.onProgress?.({ step: "convert", message: `uncompressed layers were gzipped for ${name}, so its manifest is new (${sent.digest}, was ${image.digest})` });
    }
    const counts = await pushBlobs(client, sent, reference, opts);
    await putManifest(client, reference, { bytes: sent.manifestBytes, digest: sent.digest, mediaType: sent.mediaType });
    // Layers sent as they were are now known to live here too: a later push elsewhere mounts them.
    const here: BlobLocation = { registry: reference.registry, repository: reference.repository };
    for (const [i, layer] of image.layers.entries()) if (prepared.layers[i] === layer) rememberLocation(layer, here);
    return { digest: sent.digest, ...counts };
  } finally {
    await prepared.dispose();
  }
}

async function pushBlobs(client: RegistryClient, image: Image, reference: RegistryReference, opts: PushOptions): Promise<Counts> {
  const name = formatReference(reference);
  const settings = {
    chunkThreshold: opts.chunkThreshold ?? DEFAULT_CHUNK_THRESHOLD,
    chunkSize: opts.chunkSize ?? DEFAULT_CHUNK_SIZE,
    book: opts.blobLocations,
  };
  // The config an image was read with lives where its layers were read from.
  const configLocations = image.layers.flatMap((l) => locationsOf(l).slice(0, 1)).slice(0, 1);
  const blobs: BlobToPush[] = [
    {
      digest: image.configDigest, size: image.configBytes.length, locations: configLocations,
      describe: `the config of ${name}`, open: () => Promise.resolve(Readable.from([image.configBytes])),
    },
    ...image.layers.map((layer, i): BlobToPush => ({
      digest: layer.digest, size: layer.size, locations: locationsOf(layer),
      describe: `layer ${i + 1} of ${name}`,
      // A bar per layer sent (the config is small); a retried upload starts its bar again.
      open: async (signal) => chain(await layer.open(signal), meteringStream(opts.onProgress, "push", `push ${layer.digest}`, `sending layer ${i + 1} of ${name}`, layer.size)),
    })),
  ];
  const counts = emptyCounts();
  await mapLimited(blobs, Math.max(1, opts.concurrency ?? DEFAULT_CONCURRENCY), async (blob) => {
    const outcome = await pushBlob(client, reference.repository, blob, settings);
    counts[outcome]++;
    if (outcome === "uploaded") counts.bytes += blob.size;
    opts.onProgress?.({ step: "push", message: describeOutcome(outcome, blob) });
  });
  return counts;
}

/** PUTs a manifest or index as it is, by tag (or by digest), and checks the digest the registry reports. */
export async function putManifest(client: RegistryClient, reference: RegistryReference, doc: { bytes: Buffer; digest: Digest; mediaType: string }): Promise<void> {
  const name = formatReference(reference);
  const { repository } = reference;
  const action = `store the manifest of ${name}`;
  const retries = client.step(action);
  const response = await client.request({
    method: "PUT",
    url: `/v2/${repository}/manifests/${reference.tag ?? doc.digest}`,
    scopes: [{ repository, actions: ["pull", "push"] }],
    headers: { "content-type": doc.mediaType },
    body: doc.bytes,
    idempotent: true,
    retries,
  });
  if (response.status !== 201 && response.status !== 200 && response.status !== 202) {
    throw await registryFailure(response, { registry: reference.registry, repository, action, retries });
  }
  await discard(response);
  const stored = response.headers.get("docker-content-digest");
  if (stored && stored !== doc.digest) {
    throw new DigestMismatchError(`${reference.registry} stored the manifest of ${name} as ${stored}, not ${doc.digest}; it altered the manifest`);
  }
}

function describeOutcome(outcome: BlobOutcome, blob: BlobToPush): string {
  const what = `${blob.describe} ${shortDigest(blob.digest)}`;
  return outcome === "skipped" ? `${what} already present`
    : outcome === "mounted" ? `${what} mounted from another repository`
    : `${what} uploaded (${formatSize(blob.size)})`;
}
