import type { Readable } from "node:stream";
import type { BlobStore } from "../../cache/blob-store.js";
import { sha256, type Digest } from "../../model/digest.js";
import { DigestMismatchError, FormatError, ImageNotFoundError, InvalidReferenceError, UnsupportedError } from "../../model/errors.js";
import type { Layer } from "../../model/image.js";
import { makeLayer } from "../../image/layer.js";
import { compressionOfMediaType } from "../../model/mediatypes.js";
import type { Descriptor, ImageConfigJson, IndexJson, ManifestJson, Platform } from "../../model/oci.js";
import { formatPlatform, hostPlatform, parsePlatform, platformMatches } from "../../model/platform.js";
import { RegistryClient } from "./client.js";
import { readLimited, registryFailure } from "./failure.js";
import { MANIFEST_ACCEPT, parseManifestDocument, type ManifestDocument } from "./manifest-doc.js";
import {
  checkBytes, fetchIntoStore, fetchSmallBlob, openBlobStream, readSmallFromStore, saveSmallToStore, type BlobRef,
} from "./blobs.js";
import { formatSize, shortDigest, type RegistryOptions } from "./options.js";
import type { BlobLocation, LocatedLayer, RegistryImage } from "./origin.js";
import { formatReference, manifestSelector, parseRegistryReference, type RegistryReference } from "./reference.js";

/** distribution refuses manifests above 4 MiB; so do we. */
const MAX_MANIFEST_SIZE = 4 * 1024 * 1024;

export interface PullOptions extends RegistryOptions {
  /** `os/arch[/variant]` picked from an index; default the host's, in Go spelling. */
  platform?: string;
}

/**
 * Reads an image from a registry: the manifest by tag or digest (an index resolved by
 * platform), the config, and layers that fetch their blob when opened and verify it while it
 * streams. A pinned digest must be what the manifest bytes hash to. With `cache`, manifests,
 * config and layers are kept by digest, so a pinned reference reads again with no registry.
 */
export async function readRegistryImage(ref: string, opts: PullOptions = {}): Promise<RegistryImage> {
  const reference = parseRegistryReference(ref);
  const name = formatReference(reference);
  const client = new RegistryClient(reference.registry, opts);
  const store = opts.cache;
  const wanted = wantedPlatform(opts.platform);

  let doc = await fetchManifest(client, reference, manifestSelector(reference), reference.digest, store, `the manifest of ${name}`);
  if (doc.document.kind === "index") {
    const chosen = choosePlatform(doc.document.index, wanted, name);
    doc = await fetchManifest(client, reference, chosen.digest, chosen.digest, store, `the ${formatPlatform(wanted)} manifest of ${name}`);
    if (doc.document.kind !== "manifest") {
      throw new FormatError(`the ${formatPlatform(wanted)} entry of ${name}'s index is itself an index; gantry reads one level of index`);
    }
  }
  const manifest = (doc.document as Extract<ManifestDocument, { kind: "manifest" }>).manifest;

  const configRef: BlobRef = { digest: manifest.config.digest, size: manifest.config.size, describe: `the config of ${name}` };
  const configBytes = await fetchSmall(client, reference.repository, configRef, store);
  const config = parseConfig(configBytes, name);
  const layers = makeLayers(client, reference, manifest, config, store, opts);

  return {
    configBytes,
    configDigest: manifest.config.digest,
    config,
    layers,
    repoTags: reference.tag !== undefined ? [`${reference.registry}/${reference.repository}:${reference.tag}`] : [],
    registrySource: {
      reference,
      manifestDigest: doc.digest,
      manifestMediaType: doc.document.mediaType,
      manifestBytes: doc.bytes,
    },
  };
}

function wantedPlatform(spelled: string | undefined): Platform {
  if (spelled === undefined) return hostPlatform();
  const parsed = parsePlatform(spelled);
  if (!parsed) throw new InvalidReferenceError(`the platform "${spelled}" is invalid: write it as OS/ARCH[/VARIANT], e.g. linux/arm64`);
  return parsed;
}

function choosePlatform(index: IndexJson, wanted: Platform, name: string): Descriptor {
  const chosen = index.manifests.find((d) => platformMatches(d.platform, wanted));
  if (chosen) return chosen;
  const offered = index.manifests.map((d) => (d.platform ? formatPlatform(d.platform) : "unknown")).join(", ");
  throw new ImageNotFoundError(`${name} has no image for ${formatPlatform(wanted)} (it offers ${offered || "none"}); pass --platform with one of those`);
}

interface FetchedManifest { document: ManifestDocument; bytes: Buffer; digest: Digest }

/** A manifest by tag or digest; by digest, the store answers first and the bytes must hash to it. */
async function fetchManifest(
  client: RegistryClient, reference: RegistryReference, selector: string,
  pinned: Digest | undefined, store: BlobStore | undefined, what: string,
): Promise<FetchedManifest> {
  if (pinned && store) {
    const bytes = await readSmallFromStore(store, pinned);
    if (bytes) return { document: parseManifestDocument(bytes, undefined, what), bytes, digest: pinned };
  }
  const { repository, registry } = reference;
  const response = await client.request({
    method: "GET",
    url: `/v2/${repository}/manifests/${selector}`,
    scopes: [{ repository, actions: ["pull"] }],
    headers: { accept: MANIFEST_ACCEPT },
    idempotent: true,
  });
  if (!response.ok) {
    throw await registryFailure(response, {
      registry, repository, action: `read ${what}`,
      missing: selector === reference.digest || selector === reference.tag ? formatReference(reference) : `${what} (${selector})`,
    });
  }
  const bytes = await readLimited(response, MAX_MANIFEST_SIZE);
  const digest = sha256(bytes);
  if (pinned && digest !== pinned) {
    throw new DigestMismatchError(`${what} hashes to ${digest}, not the pinned ${pinned}; the registry ${registry} served other bytes, so the reference cannot be trusted`);
  }
  const announced = response.headers.get("docker-content-digest");
  if (announced && announced.startsWith("sha256:") && announced !== digest) {
    throw new DigestMismatchError(`${what} hashes to ${digest} but ${registry} announced ${announced}; the bytes were altered on the way`);
  }
  const document = parseManifestDocument(bytes, response.headers.get("content-type") ?? undefined, what);
  if (store) await saveSmallToStore(store, digest, bytes);
  return { document, bytes, digest };
}

async function fetchSmall(client: RegistryClient, repository: string, blob: BlobRef, store: BlobStore | undefined): Promise<Buffer> {
  const cached = store ? await readSmallFromStore(store, blob.digest) : undefined;
  if (cached) {
    checkBytes(cached, blob);
    return cached;
  }
  const bytes = await fetchSmallBlob(client, repository, blob);
  if (store) await saveSmallToStore(store, blob.digest, bytes);
  return bytes;
}

function parseConfig(bytes: Buffer, name: string): ImageConfigJson {
  let config: ImageConfigJson;
  try {
    config = JSON.parse(bytes.toString("utf8")) as ImageConfigJson;
  } catch (err) {
    throw new FormatError(`the config of ${name} is not valid JSON`, { cause: err });
  }
  if (typeof config !== "object" || config === null || !Array.isArray(config.rootfs?.diff_ids)) {
    throw new FormatError(`the config of ${name} has no rootfs.diff_ids; it is not an image config`);
  }
  return config;
}

function makeLayers(
  client: RegistryClient, reference: RegistryReference, manifest: ManifestJson, config: ImageConfigJson,
  store: BlobStore | undefined, opts: RegistryOptions,
): Layer[] {
  const name = formatReference(reference);
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== manifest.layers.length) {
    throw new FormatError(`${name} lists ${manifest.layers.length} layers in its manifest but ${diffIds.length} diff_ids in its config; the image is damaged`);
  }
  const location: BlobLocation = { registry: reference.registry, repository: reference.repository };
  const inFlight = new Map<Digest, Promise<void>>();
  return manifest.layers.map((desc, i): LocatedLayer => {
    const describe = `layer ${i + 1} of ${name}`;
    const compression = compressionOfMediaType(desc.mediaType ?? "");
    if (compression === undefined) {
      throw new UnsupportedError(`${describe} has media type "${desc.mediaType}", which is not a layer type gantry reads`);
    }
    const blob: BlobRef = { digest: desc.digest, size: desc.size, describe };
    const announce = (): void => opts.onProgress?.({
      step: "pull",
      message: `fetching layer ${i + 1}/${manifest.layers.length} ${shortDigest(desc.digest)} (${formatSize(desc.size)})`,
    });
    const fromRegistry = (signal?: AbortSignal): Promise<Readable> => openBlobStream(client, reference.repository, blob, signal);
    const openRaw = store
      ? async (): Promise<Readable> => {
        let pending = inFlight.get(desc.digest);
        if (!pending) {
          pending = (async () => {
            if ((await store.has(desc.digest)) !== desc.size) announce();
            await fetchIntoStore(store, blob, () => fromRegistry());
          })();
          inFlight.set(desc.digest, pending);
          pending.catch(() => inFlight.delete(desc.digest));
        }
        await pending;
        return store.open(desc.digest);
      }
      : async (signal?: AbortSignal): Promise<Readable> => { announce(); return fromRegistry(signal); };
    const layer = makeLayer({ digest: desc.digest, diffId: diffIds[i]!, size: desc.size, compression, openRaw, describe });
    return { ...layer, location };
  });
}
