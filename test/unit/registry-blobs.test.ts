import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { BlobStore } from "../../src/cache/blob-store.js";
import { AuthError, DigestMismatchError, ImageNotFoundError, RegistryError } from "../../src/model/errors.js";
import { fetchIntoStore, fetchSmallBlob, openBlobStream } from "../../src/transports/docker/blobs.js";
import type { RegistryClient } from "../../src/transports/docker/client.js";
import { DEFAULT_RETRY_POLICY } from "../../src/transports/docker/retry.js";
import { startFakeRegistry, type FakeRegistry } from "../helpers/fake-registry.js";
import { blobRef, clientFor, patternBytes, storeFor } from "./registry-fixtures.js";

/**
 * Reading blobs through the client against the fake registry: a download cut, stalled or
 * announced with the wrong length resumes with `Range: bytes=N-` (or restarts where ranges
 * are not honoured) and keeps only bytes that match the digest and size; blob GETs
 * redirected to storage arrive without the registry's credentials; the registry's refusals
 * become errors that name the blob.
 */

const SIZE = 64 * 1024;
const BLOB_GETS = { method: "GET", path: /\/blobs\/sha256:/ };
const MAX_TRIES = DEFAULT_RETRY_POLICY.maxTries;

/** Pulls `digest` of `repository` into `store` as pull.ts does: fetchIntoStore over openBlobStream. */
function pullInto(store: BlobStore, client: RegistryClient, repository: string, digest: string, size: number): Promise<void> {
  const ref = blobRef(digest, size);
  return fetchIntoStore(store, ref, () => openBlobStream(client, repository, ref));
}

/** Temporary files left in the store: a failed download must leave none. */
async function leftovers(store: BlobStore): Promise<string[]> {
  return readdir(join(store.root, "tmp")).catch(() => []);
}

const rangesAsked = (fake: FakeRegistry) => fake.requestsMatching(BLOB_GETS).map((r) => r.headers.range);

test("a download cut mid-body resumes from the byte it reached (Range, 206) and the stored blob verifies", async (t) => {
  const fake = await startFakeRegistry(t);
  const bytes = patternBytes(SIZE);
  const digest = fake.putBlob("app", bytes);
  fake.fail(BLOB_GETS, { kind: "cut", after: SIZE / 2 });
  const store = await storeFor(t);
  await pullInto(store, clientFor(fake).client, "app", digest, SIZE);
  assert.deepEqual(fake.requestsMatching(BLOB_GETS).map((r) => r.answer), ["cut", 206]);
  assert.deepEqual(rangesAsked(fake), [undefined, `bytes=${SIZE / 2}-`]);
  assert.deepEqual(await readFile(store.pathOf(blobRef(digest, SIZE).digest)), bytes);
  assert.deepEqual(await leftovers(store), []);
});

test("a registry that ignores Range answers the resumption whole (200): the bytes already received are passed over", async (t) => {
  const fake = await startFakeRegistry(t, { ranges: false });
  const bytes = patternBytes(SIZE);
  const digest = fake.putBlob("app", bytes);
  fake.fail(BLOB_GETS, { kind: "cut", after: 10_000 });
  const store = await storeFor(t);
  await pullInto(store, clientFor(fake).client, "app", digest, SIZE);
  assert.deepEqual(fake.requestsMatching(BLOB_GETS).map((r) => r.answer), ["cut", 200]);
  assert.deepEqual(rangesAsked(fake), [undefined, "bytes=10000-"]);
  assert.deepEqual(await readFile(store.pathOf(blobRef(digest, SIZE).digest)), bytes);
});

test("a download cut every 5000 bytes still completes: each answer moves it forward, so no run of faults grows", async (t) => {
  const fake = await startFakeRegistry(t);
  const bytes = patternBytes(SIZE);
  const digest = fake.putBlob("app", bytes);
  fake.fail(BLOB_GETS, { kind: "cut", after: 5000 }, { times: 100 });
  const store = await storeFor(t);
  await pullInto(store, clientFor(fake).client, "app", digest, SIZE);
  assert.equal(fake.requestsMatching(BLOB_GETS).length, Math.ceil(SIZE / 5000));
  assert.ok(Math.ceil(SIZE / 5000) > MAX_TRIES, "more faults than one run may hold");
  assert.deepEqual(await readFile(store.pathOf(blobRef(digest, SIZE).digest)), bytes);
});

test("a download cut before its first byte every time gives up after maxTries, naming the registry, the blob and the tries, keeping nothing", async (t) => {
  const fake = await startFakeRegistry(t);
  const digest = fake.putBlob("app", patternBytes(SIZE));
  fake.fail(BLOB_GETS, { kind: "cut", after: 0 }, { times: 100 });
  const store = await storeFor(t);
  await assert.rejects(pullInto(store, clientFor(fake).client, "app", digest, SIZE), (e: unknown) => {
    assert.ok(e instanceof RegistryError && e.retryable, String(e));
    assert.match(e.message, new RegExp(`^${fake.host} failed to fetch the test blob: the download was cut off after 0 of ${SIZE} bytes \\(\\w+\\), ${MAX_TRIES} tries in [\\d.]+ s; try again$`));
    return true;
  });
  assert.equal(fake.requestsMatching(BLOB_GETS).length, MAX_TRIES);
  assert.equal(await store.has(blobRef(digest, SIZE).digest), undefined);
  assert.deepEqual(await leftovers(store), []);
});

test("a download that stalls mid-body is abandoned after the stall timeout and resumed", { timeout: 15_000 }, async (t) => {
  const fake = await startFakeRegistry(t);
  const bytes = patternBytes(SIZE);
  const digest = fake.putBlob("app", bytes);
  fake.fail(BLOB_GETS, { kind: "stall", after: 3000 });
  const store = await storeFor(t);
  await pullInto(store, clientFor(fake, undefined, { stallMs: 300 }).client, "app", digest, SIZE);
  assert.deepEqual(fake.requestsMatching(BLOB_GETS).map((r) => r.answer), ["stall", 206]);
  assert.deepEqual(rangesAsked(fake), [undefined, "bytes=3000-"]);
  assert.deepEqual(await readFile(store.pathOf(blobRef(digest, SIZE).digest)), bytes);
});

test("an answer whose Content-Length is not the blob's size, longer or shorter, is a fault: asked for again", async (t) => {
  for (const by of [-100, 100]) {
    const fake = await startFakeRegistry(t);
    const bytes = patternBytes(SIZE, 3);
    const digest = fake.putBlob("app", bytes);
    fake.fail(BLOB_GETS, { kind: "length", by });
    const store = await storeFor(t);
    const { client, waits } = clientFor(fake);
    await pullInto(store, client, "app", digest, SIZE);
    assert.deepEqual(fake.requestsMatching(BLOB_GETS).map((r) => r.answer), ["length", 200], `by ${by}`);
    assert.equal(waits.length, 1, `by ${by}`);
    assert.deepEqual(await readFile(store.pathOf(blobRef(digest, SIZE).digest)), bytes);
  }
});

test("a 503 with Retry-After on a blob GET waits as asked, then reads", async (t) => {
  const fake = await startFakeRegistry(t);
  const bytes = patternBytes(SIZE);
  const digest = fake.putBlob("app", bytes);
  fake.fail(BLOB_GETS, { kind: "status", status: 503, headers: { "retry-after": "3" } });
  const store = await storeFor(t);
  const { client, waits } = clientFor(fake);
  await pullInto(store, client, "app", digest, SIZE);
  assert.deepEqual(waits, [3000]);
  assert.deepEqual(await readFile(store.pathOf(blobRef(digest, SIZE).digest)), bytes);
});

test("every byte is verified across a resumption: other bytes served after the cut are refused, nothing is kept", async (t) => {
  const fake = await startFakeRegistry(t);
  const bytes = patternBytes(SIZE);
  const digest = fake.putBlob("app", bytes);
  fake.fail(BLOB_GETS, { kind: "cut", after: SIZE / 2 });
  // Between the cut and the resumption the registry comes to serve other bytes under the digest.
  const { client } = clientFor(fake, undefined, { wait: async () => { fake.putBlobAs("app", digest, patternBytes(SIZE, 4)); } });
  const store = await storeFor(t);
  await assert.rejects(pullInto(store, client, "app", digest, SIZE), DigestMismatchError);
  assert.deepEqual(fake.requestsMatching(BLOB_GETS).map((r) => r.answer), ["cut", 206]);
  assert.equal(await store.has(blobRef(digest, SIZE).digest), undefined);
  assert.deepEqual(await leftovers(store), []);
});

test("bytes that do not match the digest, or run past the declared size, are never kept; the same wrong length twice ends the download", async (t) => {
  const fake = await startFakeRegistry(t);
  const wanted = patternBytes(SIZE);
  const digest = fake.putBlob("good", wanted);
  fake.putBlobAs("swapped", digest, patternBytes(SIZE, 5));
  fake.putBlobAs("longer", digest, Buffer.concat([wanted, Buffer.from("trailing")]));
  const store = await storeFor(t);
  const client = clientFor(fake).client;
  // Right-sized wrong bytes are the registry's: no second request. A wrong Content-Length may
  // be a fault on the way, so it is asked once more; the same answer again is the registry's.
  for (const [repository, requests] of [["swapped", 1], ["longer", 2]] as const) {
    await assert.rejects(pullInto(store, client, repository, digest, SIZE), DigestMismatchError, repository);
    assert.equal(fake.requestsMatching({ ...BLOB_GETS, path: new RegExp(`^/v2/${repository}/`) }).length, requests, repository);
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

test("a blob GET redirected to storage behind Bearer auth: the token stays with the registry, a cut at storage resumes there", async (t) => {
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
  assert.deepEqual(storage.requests.map((r) => [r.authorization, r.answer, r.headers.range]), [[undefined, "cut", undefined], [undefined, 206, "bytes=100-"]]);
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
    (e: unknown) => e instanceof RegistryError && e.retryable && e.status === 503 && e.message.includes(fake.host)
      && e.message.includes(`HTTP 503, FAULT: a scripted failure, ${MAX_TRIES} tries in`));

  // A config answered with the wrong length, or cut, is fetched again.
  fake.fail(BLOB_GETS, { kind: "length", by: -3 });
  fake.fail(BLOB_GETS, { kind: "cut", after: 5 });
  assert.deepEqual(await fetchSmallBlob(client, "app", blobRef(digest, config.length)), config);
  assert.deepEqual(fake.requestsMatching(BLOB_GETS).slice(-3).map((r) => r.answer), ["length", "cut", 200]);
});
