import { createWriteStream } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import type { ContentStore } from "../../model/content-store.js";
import { sha256, type Digest } from "../../model/digest.js";
import { DigestMismatchError, GantryError, RegistryError, ioError } from "../../model/errors.js";
import { verifying } from "../../model/verify.js";
import type { RegistryClient } from "./client.js";
import { readLimited, registryFailure } from "./failure.js";
import { MAX_TRIES } from "./http.js";

/** Reading blobs from a registry, and keeping them in a ContentStore so they are fetched once. */

export interface BlobRef {
  readonly digest: Digest;
  readonly size: number;
  /** Names the blob in errors: "layer 2 of 127.0.0.1:5000/app:1". */
  readonly describe: string;
}

/** GETs a blob, failing with a sentence naming it unless the registry answers with its bytes. */
async function requestBlob(client: RegistryClient, repository: string, blob: BlobRef, signal?: AbortSignal): Promise<Response> {
  const response = await client.request({
    method: "GET",
    url: `/v2/${repository}/blobs/${blob.digest}`,
    scopes: [{ repository, actions: ["pull"] }],
    // fetch would silently inflate a Content-Encoding: gzip answer and the digest would no longer match.
    headers: { "accept-encoding": "identity" },
    idempotent: true,
    ...(signal ? { signal } : {}),
  });
  if (!response.ok || !response.body) {
    throw await registryFailure(response, {
      registry: client.registry, repository, action: `fetch ${blob.describe}`,
      missing: `${blob.describe} (blob ${blob.digest})`,
    });
  }
  return response;
}

/** The blob's bytes as the registry sends them; the caller verifies them. */
export async function openBlobStream(client: RegistryClient, repository: string, blob: BlobRef, signal?: AbortSignal): Promise<Readable> {
  const response = await requestBlob(client, repository, blob, signal);
  return Readable.fromWeb(response.body as unknown as WebReadableStream<Uint8Array>);
}

/** A small blob (a config) read whole, checked against its digest and size. */
export async function fetchSmallBlob(client: RegistryClient, repository: string, blob: BlobRef): Promise<Buffer> {
  const response = await requestBlob(client, repository, blob);
  const bytes = await readLimited(response, blob.size);
  checkBytes(bytes, blob);
  return bytes;
}

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

export async function saveSmallToStore(store: ContentStore, digest: Digest, bytes: Buffer): Promise<void> {
  if ((await store.has(digest)) !== undefined) return;
  const temp = await store.tempPath();
  try {
    await pipeline(Readable.from([bytes]), createWriteStream(temp));
  } catch (err) {
    await rm(temp, { force: true });
    throw ioError(`the blob store ${store.root}`, err);
  }
  await store.commit(temp, digest);
}

/**
 * Makes sure the store holds `blob`: streams it from `open` into a temporary file, verified
 * against digest and size, and renames it into place. A dropped connection starts the
 * download again (bounded); a blob that does not match its digest is never kept.
 */
export async function fetchIntoStore(store: ContentStore, blob: BlobRef, open: () => Promise<Readable>): Promise<void> {
  if ((await store.has(blob.digest)) === blob.size) return;
  for (let attempt = 1; ; attempt++) {
    const temp = await store.tempPath();
    try {
      await pipeline(await open(), verifying(blob.digest, blob.describe, blob.size), createWriteStream(temp));
      await store.commit(temp, blob.digest);
      return;
    } catch (err) {
      await rm(temp, { force: true });
      const retryable = err instanceof GantryError ? err.retryable : isConnectionDrop(err);
      if (!retryable || attempt >= MAX_TRIES) {
        if (err instanceof GantryError) throw err;
        throw isConnectionDrop(err)
          ? new RegistryError(`the download of ${blob.describe} was cut off (${(err as Error).message}); try again`, { cause: err, retryable: true })
          : ioError(`the blob store ${store.root}`, err);
      }
    }
  }
}

function isConnectionDrop(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === "ECONNRESET" || code === "UND_ERR_SOCKET" || code === "ERR_STREAM_PREMATURE_CLOSE"
    || (err instanceof TypeError && /terminated|fetch failed/i.test(err.message));
}
