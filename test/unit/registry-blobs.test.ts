import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { BlobStore } from "../../src/cache/blob-store.js";
import { AuthError, DigestMismatchError, ImageNotFoundError, RegistryError } from "../../src/model/errors.js";
import { fetchIntoStore, fetchSmallBlob, openBlobStream } from "../../src/transports/docker/blobs.js";
import type { RegistryClient } from "../../src/transports/docker/client.js";
import { MAX_TRIES } from "../../src/transports/docker/http.js";
import { startFakeRegistry } from "../helpers/fake-registry.js";
import { blobRef, clientFor, patternBytes, storeFor } from "./registry-fixtures.js";

/**
 * Reading blobs through the client against the fake registry: fetchIntoStore tries a
 * download cut mid-body again and keeps only bytes that match the digest and size; blob
 * GETs redirected to storage arrive without the registry's credentials; the registry's
 * refusals become errors that name the blob.
 */

const SIZE = 64 * 1024;
const BLOB_GETS = { method: "GET", path: /\/blobs\/sha256:/ };

/** Pulls `digest` of `repository` into `store` as pull.ts does: fetchIntoStore over openBlobStream. */
function pullInto(store: BlobStore, client: RegistryClient, repository: string, digest: string, size: number): Promise<void> {
  const ref = blobRef(digest, size);
  return fetchIntoStore(store, ref, () => openBlobStream(client, repository, ref));
}

/** Temporary files left in the store: a failed download must leave none. */
async function leftovers(store: BlobStore): Promise<string[]> {
  return readdir(join(store.root, "tmp")).catch(() => []);
}

test("a download cut mid-body is tried again and the stored blob verifies", async (t) => {
  const fake = await startFakeRegistry(t);
  const bytes = patternBytes(SIZE);
  const digest = fake.putBlob("app", bytes);
  fake.fail(BLOB_GETS, { kind: "cut", after: SIZE / 2 });
  const store = await storeFor(t);
  await pullInto(store, clientFor(fake).client, "app", digest, SIZE);
  assert.deepEqual(fake.requestsMatching(BLOB_GETS).map((r) => r.answer), ["cut", 200]);
  assert.deepEqual(await readFile(store.pathOf(blobRef(digest, SIZE).digest)), bytes);
  assert.deepEqual(await leftovers(store), []);
});

test("a download cut every time gives up after MAX_TRIES with a retryable error, keeping nothing", async (t) => {
  const fake = await startFakeRegistry(t);
  const digest = fake.putBlob("app", patternBytes(SIZE));
  fake.fail(BLOB_GETS, { kind: "cut", after: 1000 }, { times: 100 });
  const store = await storeFor(t);
  await assert.rejects(pullInto(store, clientFor(fake).client, "app", digest, SIZE),
    (e: unknown) => e instanceof RegistryError && e.retryable && /cut off/.test(e.message));
  assert.equal(fake.requestsMatching(BLOB_GETS).length, MAX_TRIES);
  assert.equal(await store.has(blobRef(digest, SIZE).digest), undefined);
  assert.deepEqual(await leftovers(store), []);
});

test("bytes that do not match the digest, or run past the declared size, are never kept nor fetched again", async (t) => {
  const fake = await startFakeRegistry(t);
  const wanted = patternBytes(SIZE);
  const digest = fake.putBlob("good", wanted);
  fake.putBlobAs("swapped", digest, patternBytes(SIZE, 5));
  fake.putBlobAs("longer", digest, Buffer.concat([wanted, Buffer.from("trailing")]));
  const store = await storeFor(t);
  const client = clientFor(fake).client;
  for (const repository of ["swapped", "longer"]) {
    await assert.rejects(pullInto(store, client, repository, digest, SIZE), DigestMismatchError, repository);
    assert.equal(fake.requestsMatching({ ...BLOB_GETS, path: new RegExp(`^/v2/${repository}/`) }).length, 1, repository);
    assert.equal(await store.has(blobRef(digest, SIZE).digest), undefined, repository);
  }
  assert.deepEqual(await leftovers(store), []);
});

test("a blob already in the store at its size is not fetched", async (t) => {
  const fake = await startFakeRegistry(t);
  const digest = fake.putBlob("app", patternBytes(SIZE));
  const store = await storeFor(t);
  const client = clientFor(fake).client;
  await pullInto(store, client, "app", digest, SIZE);
  await pullInto(store, client, "app", digest, SIZE);
  assert.equal(fake.requestsMatching(BLOB_GETS).length, 1);
});

test("a blob GET redirected to storage behind Bearer auth: the token stays with the registry, a cut at storage is retried", async (t) => {
  const fake = await startFakeRegistry(t, { auth: { kind: "bearer", service: "svc" } });
  const storage = await startFakeRegistry(t);
  fake.redirectBlobsTo(storage);
  const bytes = patternBytes(SIZE);
  const digest = fake.putBlob("team/app", bytes);
  storage.fail({ method: "GET" }, { kind: "cut", after: 100 });
  const store = await storeFor(t);
  await pullInto(store, clientFor(fake).client, "team/app", digest, SIZE);
  assert.deepEqual(await readFile(store.pathOf(blobRef(digest, SIZE).digest)), bytes);
  assert.deepEqual(fake.requestsMatching(BLOB_GETS).map((r) => [r.authorization, r.answer]), [["Bearer token-1", 307], ["Bearer token-1", 307]]);
  assert.deepEqual(storage.requests.map((r) => [r.authorization, r.answer]), [[undefined, "cut"], [undefined, 200]]);
});

test("fetchSmallBlob checks digest and size; a missing blob, a denial and a failing registry are errors naming the blob", async (t) => {
  const fake = await startFakeRegistry(t);
  const config = Buffer.from('{"architecture":"amd64"}');
  const digest = fake.putBlob("app", config);
  const client = clientFor(fake).client;
  assert.deepEqual(await fetchSmallBlob(client, "app", blobRef(digest, config.length)), config);

  fake.putBlobAs("bad", digest, Buffer.from('{"architecture":"arm64"}'));
  await assert.rejects(fetchSmallBlob(client, "bad", blobRef(digest, config.length)), DigestMismatchError);

  await assert.rejects(fetchSmallBlob(client, "elsewhere", blobRef(digest, config.length)),
    (e: unknown) => e instanceof ImageNotFoundError && e.message.includes(digest) && /BLOB_UNKNOWN/.test(e.message));

  fake.fail(BLOB_GETS, { kind: "status", status: 403 });
  await assert.rejects(fetchSmallBlob(client, "app", blobRef(digest, config.length)),
    (e: unknown) => e instanceof AuthError && e.message.includes(`${fake.host}/app`));

  fake.fail(BLOB_GETS, { kind: "status", status: 503 }, { times: MAX_TRIES });
  await assert.rejects(fetchSmallBlob(client, "app", blobRef(digest, config.length)),
    (e: unknown) => e instanceof RegistryError && e.retryable && e.status === 503 && e.message.includes(fake.host));
});
