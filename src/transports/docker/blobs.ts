import { createWriteStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ContentStore } from "../../model/content-store.js";
import { sha256, type Digest } from "../../model/digest.js";
import { DigestMismatchError, GantryError, ioError } from "../../model/errors.js";
import { verifying } from "../../model/verify.js";
import { removeWhenClosed } from "../../util/io.js";
import type { RegistryClient } from "./client.js";
import { downloadBlob } from "./download.js";
import { registryFailure } from "./failure.js";

/** Reading blobs from a registry, and keeping them in a ContentStore so they are fetched once. */

/** A blob to fetch: the digest and size in bytes its bytes are checked against. */
export interface BlobRef {
  readonly digest: Digest;
  readonly size: number;
  /** Names the blob in errors: "layer 2 of 127.0.0.1:5000/app:1". */
  readonly describe: string;
}

/** The blob's bytes as the registry sends them, resumed across faults (download.ts); the caller verifies them. */
export function openBlobStream(client: RegistryClient, repository: string, blob: BlobRef, signal?: AbortSignal): Promise<Readable> {
  return downloadBlob(client, { ...blob, repository }, client.step(`fetch ${blob.describe}`), signal);
}

/**
 * A small blob (a config) read whole, checked against its digest and size. An answer of
 * the wrong length is a fault of the way there, fetched again; right-sized bytes that do
 * not match the digest are the registry's, and an error.
 */
export async function fetchSmallBlob(client: RegistryClient, repository: string, blob: BlobRef): Promise<Buffer> {
  const retries = client.step(`fetch ${blob.describe}`);
  const { response, bytes } = await client.requestWhole({
    method: "GET",
    url: `/v2/${repository}/blobs/${blob.digest}`,
    scopes: [{ repository, actions: ["pull"] }],
    headers: { "accept-encoding": "identity" },
    idempotent: true,
    retries,
  }, { limit: blob.size, size: blob.size });
  if (!bytes) {
    throw await registryFailure(response, {
      registry: client.registry, repository, action: `fetch ${blob.describe}`, retries,
      missing: `${blob.describe} (blob ${blob.digest})`,
    });
  }
  checkBytes(bytes, blob);
  return bytes;
}

/** Throws DigestMismatchError when `bytes` are not the blob's declared size or digest. */
export function checkBytes(bytes: Buffer, blob: BlobRef): void {
  if (bytes.length !== blob.size) {
    throw new DigestMismatchError(`${blob.describe} is ${bytes.length} bytes, not its declared ${blob.size}`);
  }
  const actual = sha256(bytes);
  if (actual !== blob.digest) {
    throw new DigestMismatchError(`${blob.describe} does not match its digest: expected ${blob.digest}, got ${actual}`);
  }
}

/** A small blob from the store, or undefined when it is absent or damaged (then fetched again). */
export async function readSmallFromStore(store: ContentStore, digest: Digest): Promise<Buffer | undefined> {
  if ((await store.has(digest)) === undefined) return undefined;
  try {
    const bytes = await readFile(store.pathOf(digest));
    return sha256(bytes) === digest ? bytes : undefined;
  } catch {
    return undefined;
  }
}

/** Keeps a small blob, already verified, in the store under `digest`, unless it is there; IoError when it cannot be written. */
export async function saveSmallToStore(store: ContentStore, digest: Digest, bytes: Buffer): Promise<void> {
  if ((await store.has(digest)) !== undefined) return;
  const temp = await store.tempPath();
  const file = createWriteStream(temp);
  try {
    await pipeline(Readable.from([bytes]), file);
  } catch (err) {
    await removeWhenClosed(file, temp);
    throw ioError(`the blob store ${store.root}`, err);
  }
  await store.commit(temp, digest);
}

/**
 * Makes sure the store holds `blob`: streams it from `open` (which resumes across faults)
 * into a temporary file, verified against digest and size, and renames it into place. A
 * blob that does not match its digest is never kept.
 */
export async function fetchIntoStore(store: ContentStore, blob: BlobRef, open: () => Promise<Readable>): Promise<void> {
  if ((await store.has(blob.digest)) === blob.size) return;
  const temp = await store.tempPath();
  const file = createWriteStream(temp);
  try {
    await pipeline(await open(), verifying(blob.digest, blob.describe, blob.size), file);
  } catch (err) {
    // The bytes may fail their check before the file is even open (more than the size at once).
    await removeWhenClosed(file, temp);
    throw err instanceof GantryError ? err : ioError(`the blob store ${store.root}`, err);
  }
  await store.commit(temp, blob.digest);
}
