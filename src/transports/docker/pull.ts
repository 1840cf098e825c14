import type { Readable, Transform } from "node:stream";
import { chain } from "../../model/verify.js";
import { meteringStream } from "../../model/progress.js";
import type { ContentStore } from "../../model/content-store.js";
import { sha256, type Digest } from "../../model/digest.js";
import { DigestMismatchError } from "../../model/errors.js";
import type { ImageOrIndex, Layer } from "../../model/image.js";
import type { Descriptor } from "../../model/oci.js";
import { readDocument, type BlobReader } from "../../image/image.js";
import { MANIFEST_ACCEPT, MAX_MANIFEST_BYTES } from "../../image/parse.js";
import { RegistryClient } from "./client.js";
import { registryFailure } from "./failure.js";
import {
  fetchIntoStore, fetchSmallBlob, openBlobStream, readSmallFromStore, saveSmallToStore, type BlobRef,
} from "./blobs.js";
import { hintsFrom } from "./blob-locations.js";
import { formatSize, shortDigest, type RegistryOptions } from "./options.js";
import type { BlobLocation, LocatedLayer } from "./origin.js";
import { formatReference, manifestSelector, type RegistryReference } from "./reference.js";

/**
 * Reads an image or index from a registry: the manifest by tag or digest, kept as the
 * registry serves it (its digest is what `Docker-Content-Digest` says, and a pinned digest
 * must be what the bytes hash to), then config and layers through the image model. Layers
 * fetch their blob when opened and verify it while it streams. With a cache store,
 * manifests, configs and layers are kept by digest, so a pinned reference reads again with
 * no registry.
 */
export async function readRegistry(reference: RegistryReference, opts: RegistryOptions = {}): Promise<ImageOrIndex> {
  const name = formatReference(reference);
  const client = new RegistryClient(reference.registry, opts);
  const top = await fetchManifest(client, reference, manifestSelector(reference), reference.digest, opts.cache, `the manifest of ${name}`);
  const repoTags = reference.tag !== undefined ? [`${reference.registry}/${reference.repository}:${reference.tag}`] : [];
  return readDocument(registryReader(client, reference, opts), { bytes: top.bytes, hint: top.contentType, repoTags, what: `the manifest of ${name}` }, opts.signal);
}

/** A manifest as the registry served it: its bytes, their digest, and the media type it was served as. */
export interface FetchedManifest { bytes: Buffer; digest: Digest; contentType: string | undefined }

/**
 * A manifest by tag or digest; by digest, the store answers first and the bytes must hash
 * to it. With a `size` (a descriptor's), an answer of another length is fetched again.
 */
export async function fetchManifest(
  client: RegistryClient, reference: RegistryReference, selector: string,
  pinned: Digest | undefined, store: ContentStore | undefined, what: string, size?: number,
): Promise<FetchedManifest> {
  if (pinned && store) {
    const bytes = await readSmallFromStore(store, pinned);
    if (bytes) return { bytes, digest: pinned, contentType: undefined };
  }
  const { repository, registry } = reference;
  const retries = client.step(`read ${what}`);
  const { response, bytes } = await client.requestWhole({
    method: "GET",
    url: `/v2/${repository}/manifests/${selector}`,
    scopes: [{ repository, actions: ["pull"] }],
    headers: { accept: MANIFEST_ACCEPT },
    idempotent: true,
    retries,
  }, { limit: MAX_MANIFEST_BYTES, ...(size !== undefined ? { size } : {}) });
  if (!bytes) {
    throw await registryFailure(response, {
      registry, repository, action: `read ${what}`, retries,
      missing: selector === reference.digest || selector === reference.tag ? formatReference(reference) : `${what} (${selector})`,
    });
  }
  const digest = sha256(bytes);
  if (pinned && digest !== pinned) {
    throw new DigestMismatchError(`${what} hashes to ${digest}, not the pinned ${pinned}; the registry ${registry} served other bytes, so the reference cannot be trusted`);
  }
  const announced = response.headers.get("docker-content-digest");
  if (announced && announced.startsWith("sha256:") && announced !== digest) {
    throw new DigestMismatchError(`${what} hashes to ${digest} but ${registry} announced ${announced}; the bytes were altered on the way`);
  }
  if (store) await saveSmallToStore(store, digest, bytes);
  return { bytes, digest, contentType: response.headers.get("content-type") ?? undefined };
}

/** The registry as the image model reads it: manifests and blobs of one repository, through the store when there is one. */
function registryReader(client: RegistryClient, reference: RegistryReference, opts: RegistryOptions): BlobReader {
  const name = formatReference(reference);
  const store = opts.cache;
  const location: BlobLocation = { registry: reference.registry, repository: reference.repository };
  const inFlight = new Map<Digest, Promise<void>>();
  const blobRef = (desc: Descriptor): BlobRef => ({ digest: desc.digest, size: desc.size, describe: `the blob ${desc.digest} of ${name}` });

  // Every blob this repository's manifests name is in it: a later push elsewhere may mount it.
  const book = hintsFrom(opts.blobLocations);
  const seen = (desc: Descriptor): Promise<void> => book.remember(reference.registry, reference.repository, desc.digest);

  const fetchSmall = async (desc: Descriptor): Promise<Buffer> => {
    await seen(desc);
    const cached = store ? await readSmallFromStore(store, desc.digest) : undefined;
    if (cached) return cached;
    const bytes = await fetchSmallBlob(client, reference.repository, blobRef(desc));
    if (store) await saveSmallToStore(store, desc.digest, bytes);
    return bytes;
  };

  const announce = (desc: Descriptor): void => opts.onProgress?.({
    step: "pull", message: `fetching layer ${shortDigest(desc.digest)} (${formatSize(desc.size)})`,
  });

  const openLayer = async (desc: Descriptor, signal?: AbortSignal): Promise<Readable> => {
    const blob = blobRef(desc);
    await seen(desc);
    const meter = (): Transform => meteringStream(opts.onProgress, "pull", `pull ${desc.digest}`, `fetching layer ${shortDigest(desc.digest)}`, desc.size);
    if (!store) {
      announce(desc);
      return chain(await openBlobStream(client, reference.repository, blob, signal), meter());
    }
    // Two readers of one layer share one download into the store.
    let pending = inFlight.get(desc.digest);
    if (!pending) {
      pending = (async () => {
        if ((await store.has(desc.digest)) !== desc.size) announce(desc);
        await fetchIntoStore(store, blob, async () => chain(await openBlobStream(client, reference.repository, blob), meter()));
      })();
      inFlight.set(desc.digest, pending);
      pending.catch(() => inFlight.delete(desc.digest));
    }
    await pending;
    return store.open(desc.digest);
  };

  return {
    where: (desc) => `${reference.registry}/${reference.repository}@${desc.digest}`,
    readManifest: async (desc) => (await fetchManifest(client, reference, desc.digest, desc.digest, store, `the manifest ${desc.digest} of ${name}`, desc.size)).bytes,
    readBlob: fetchSmall,
    openBlob: openLayer,
    adoptLayer: (layer: Layer): LocatedLayer => ({ ...layer, location }),
  };
}
