import { test } from "node:test";
import assert from "node:assert/strict";
import { DigestMismatchError, GantryError, RegistryError } from "../../src/model/errors.js";
import type { BlobLocationBook } from "../../src/transports/docker/blob-locations.js";
import { DEFAULT_RETRY_POLICY } from "../../src/transports/docker/retry.js";
import { pushBlob, type UploadSettings } from "../../src/transports/docker/upload.js";
import { startFakeRegistry, type FakeRegistry } from "../helpers/fake-registry.js";
import { blobToPush, clientFor, patternBytes } from "./registry-fixtures.js";

/**
 * pushBlob against the fake registry: the cheap ways out (HEAD finds it, a mount), the
 * monolithic upload, and the chunked one resuming from the Range the registry reports
 * after a chunk failed part-way. The fake checks each PATCH's Content-Range against what
 * it holds and the final PUT's digest against the bytes, as distribution does.
 */

const MONOLITHIC: UploadSettings = { chunkThreshold: 1 << 20, chunkSize: 1 << 20 };
const CHUNKED: UploadSettings = { chunkThreshold: 0, chunkSize: 1000 };
const SIZE = 4500;

const patches = (fake: FakeRegistry) => fake.requestsMatching({ method: "PATCH" });
const contentRanges = (fake: FakeRegistry) => patches(fake).map((r) => r.headers["content-range"]);

test("a blob the repository already has is skipped after one HEAD: nothing is opened or posted", async (t) => {
  const fake = await startFakeRegistry(t);
  const bytes = patternBytes(SIZE);
  fake.putBlob("app", bytes);
  const blob = blobToPush(bytes);
  assert.equal(await pushBlob(clientFor(fake).client, "app", blob, MONOLITHIC), "skipped");
  assert.equal(blob.opened(), 0);
  assert.deepEqual(fake.requests.filter((r) => r.path !== "/v2/").map((r) => r.method), ["HEAD"]);
});

test("a mount answered 201 counts as mounted; the token covers both repositories and no bytes are sent", async (t) => {
  const fake = await startFakeRegistry(t, { auth: { kind: "bearer", service: "svc" } });
  const bytes = patternBytes(SIZE);
  const digest = fake.putBlob("base", bytes);
  const blob = blobToPush(bytes, { locations: [{ registry: fake.host, repository: "base" }] });
  assert.equal(await pushBlob(clientFor(fake).client, "app", blob, MONOLITHIC), "mounted");
  const [post, ...others] = fake.requestsMatching({ method: "POST" });
  assert.equal(others.length, 0);
  assert.equal(post?.query.get("mount"), digest);
  assert.equal(post?.query.get("from"), "base");
  assert.equal(post?.answer, 201);
  assert.deepEqual(fake.tokenRequests.map((r) => r.scopes.sort()), [["repository:app:pull,push", "repository:base:pull"]]);
  assert.equal(blob.opened(), 0);
  assert.deepEqual(fake.blob("app", digest), bytes);
});

test("a mount the registry declines (202) becomes an upload; a location on another registry is not tried", async (t) => {
  const fake = await startFakeRegistry(t);
  const bytes = patternBytes(SIZE);
  const declined = blobToPush(bytes, { locations: [{ registry: fake.host, repository: "lacks-it" }] });
  assert.equal(await pushBlob(clientFor(fake).client, "app", declined, MONOLITHIC), "uploaded");
  assert.equal(fake.requestsMatching({ method: "POST" })[0]?.query.get("from"), "lacks-it");

  const elsewhere = blobToPush(patternBytes(SIZE, 2), { locations: [{ registry: "other.example:5000", repository: "base" }] });
  assert.equal(await pushBlob(clientFor(fake).client, "app", elsewhere, MONOLITHIC), "uploaded");
  assert.equal(fake.requestsMatching({ method: "POST" })[1]?.url, "/v2/app/blobs/uploads/");
  assert.deepEqual(fake.blob("app", elsewhere.digest), patternBytes(SIZE, 2));
});

test("a monolithic upload: POST, then one PUT with the digest and the bytes, to a relative Location", async (t) => {
  const fake = await startFakeRegistry(t, { relativeLocations: true });
  const bytes = patternBytes(SIZE);
  const blob = blobToPush(bytes);
  assert.equal(await pushBlob(clientFor(fake).client, "team/app", blob, MONOLITHIC), "uploaded");
  const puts = fake.requestsMatching({ method: "PUT" });
  assert.equal(puts.length, 1);
  assert.equal(puts[0]?.query.get("digest"), blob.digest);
  assert.deepEqual(puts[0]?.body, bytes);
  assert.equal(patches(fake).length, 0);
  assert.deepEqual(fake.blob("team/app", blob.digest), bytes);
});

test("a monolithic PUT answered 503 goes again to the same session, the blob read afresh, nothing asked in between", async (t) => {
  const fake = await startFakeRegistry(t);
  fake.fail({ method: "PUT" }, { kind: "status", status: 503 });
  const bytes = patternBytes(SIZE);
  const blob = blobToPush(bytes);
  assert.equal(await pushBlob(clientFor(fake).client, "app", blob, MONOLITHIC), "uploaded");
  assert.deepEqual(fake.requests.filter((r) => r.path !== "/v2/").map((r) => [r.method, r.answer]),
    [["HEAD", 404], ["POST", 202], ["PUT", 503], ["PUT", 201]]);
  assert.equal(blob.opened(), 2);
  assert.deepEqual(fake.blob("app", blob.digest), bytes);
});

test("a monolithic PUT whose connection drops: the upload asks (HEAD, the session's Range) and, the session empty, starts over", async (t) => {
  const fake = await startFakeRegistry(t);
  fake.fail({ method: "PUT" }, { kind: "reset" });
  const bytes = patternBytes(SIZE);
  const blob = blobToPush(bytes);
  assert.equal(await pushBlob(clientFor(fake).client, "app", blob, MONOLITHIC), "uploaded");
  assert.deepEqual(fake.requests.filter((r) => r.path !== "/v2/").map((r) => [r.method, r.answer]),
    [["HEAD", 404], ["POST", 202], ["PUT", "reset"], ["HEAD", 404], ["GET", 204], ["POST", 202], ["PUT", 201]]);
  assert.deepEqual(fake.blob("app", blob.digest), bytes);
});

for (const every of [2, 3, 4]) {
  test(`503 on every ${every}th request, whatever it is: a monolithic and a chunked upload both complete (no cycle of requests meets the fault each time)`, async (t) => {
    const fake = await startFakeRegistry(t);
    fake.fail({}, { kind: "status", status: 503 }, { every, times: 10_000 });
    const client = clientFor(fake).client;
    const whole = blobToPush(patternBytes(SIZE, 1));
    const chunked = blobToPush(patternBytes(SIZE, 2));
    assert.equal(await pushBlob(client, "app", whole, MONOLITHIC), "uploaded");
    assert.equal(await pushBlob(client, "app", chunked, CHUNKED), "uploaded");
    assert.ok(fake.requests.filter((r) => r.answer === 503).length >= 2);
    assert.deepEqual(fake.blob("app", whole.digest), patternBytes(SIZE, 1));
    assert.deepEqual(fake.blob("app", chunked.digest), patternBytes(SIZE, 2));
  });
}

test("a chunked upload whose third PATCH fails part-way: sent again, refused (the session moved on), and resumed from the registry's Range", async (t) => {
  const fake = await startFakeRegistry(t);
  // The registry takes in 400 bytes of the third chunk, then answers 500.
  fake.fail({ method: "PATCH" }, { kind: "status", status: 500, keepBody: 400 }, { skip: 2 });
  const bytes = patternBytes(SIZE);
  const blob = blobToPush(bytes);
  assert.equal(await pushBlob(clientFor(fake).client, "app", blob, CHUNKED), "uploaded");
  assert.deepEqual(contentRanges(fake), ["0-999", "1000-1999", "2000-2999", "2000-2999", "2400-3399", "3400-4399", "4400-4499"]);
  assert.deepEqual(patches(fake).map((r) => r.answer), [202, 202, 500, 400, 202, 202, 202]);
  assert.equal(fake.requestsMatching({ method: "POST" }).length, 1, "the session was resumed, not restarted");
  assert.equal(fake.requestsMatching({ method: "GET", path: /\/uploads\// }).length, 1, "one status query");
  assert.deepEqual(fake.blob("app", blob.digest), bytes);
});

test("a chunked upload whose connection drops mid-chunk resumes the same way, with relative Locations", async (t) => {
  const fake = await startFakeRegistry(t, { relativeLocations: true });
  fake.fail({ method: "PATCH" }, { kind: "reset", keepBody: 700 }, { skip: 1 });
  const bytes = patternBytes(SIZE);
  const blob = blobToPush(bytes);
  assert.equal(await pushBlob(clientFor(fake).client, "app", blob, CHUNKED), "uploaded");
  assert.deepEqual(contentRanges(fake), ["0-999", "1000-1999", "1700-2699", "2700-3699", "3700-4499"]);
  assert.deepEqual(fake.blob("app", blob.digest), bytes);
});

test("a last chunk that arrived whole although its answer was lost: nothing is sent again but the commit", async (t) => {
  const fake = await startFakeRegistry(t);
  fake.fail({ method: "PATCH" }, { kind: "status", status: 502, keepBody: 500 }, { skip: 4 });
  const bytes = patternBytes(SIZE);
  const blob = blobToPush(bytes);
  assert.equal(await pushBlob(clientFor(fake).client, "app", blob, CHUNKED), "uploaded");
  assert.deepEqual(contentRanges(fake), ["0-999", "1000-1999", "2000-2999", "3000-3999", "4000-4499", "4000-4499"]);
  assert.equal(patches(fake).at(-1)?.answer, 400, "refused: the registry holds it all, which its Range then says");
  assert.deepEqual(fake.requestsMatching({ method: "PUT" }).map((r) => r.body.length), [0]);
  assert.deepEqual(fake.blob("app", blob.digest), bytes);
});

test("a session whose Range cannot tell one byte from none (0-0) is started again rather than resumed at a guess", async (t) => {
  const fake = await startFakeRegistry(t);
  // The registry took in one byte of the first chunk: distribution then reports Range 0-0.
  fake.fail({ method: "PATCH" }, { kind: "status", status: 500, keepBody: 1 });
  const bytes = patternBytes(SIZE);
  const blob = blobToPush(bytes);
  assert.equal(await pushBlob(clientFor(fake).client, "app", blob, CHUNKED), "uploaded");
  assert.equal(fake.requestsMatching({ method: "PATCH" }).filter((r) => r.answer === 416).length, 0);
  assert.equal(fake.requestsMatching({ method: "POST" }).length, 2);
  assert.deepEqual(fake.blob("app", blob.digest), bytes);
});

test("a registry that lost the upload session: the upload starts over and still stores the right bytes", async (t) => {
  const fake = await startFakeRegistry(t);
  fake.fail({ method: "PATCH" }, { kind: "status", status: 404 }, { skip: 1 });
  fake.fail({ method: "GET", path: /\/uploads\// }, { kind: "status", status: 404 });
  const bytes = patternBytes(SIZE);
  const blob = blobToPush(bytes);
  assert.equal(await pushBlob(clientFor(fake).client, "app", blob, CHUNKED), "uploaded");
  assert.equal(fake.requestsMatching({ method: "POST" }).length, 2);
  assert.deepEqual(fake.blob("app", blob.digest), bytes);
});

test("a source that does not match its digest is never committed", async (t) => {
  const fake = await startFakeRegistry(t);
  const bytes = patternBytes(SIZE);
  const damaged = blobToPush(bytes, { actually: patternBytes(SIZE, 9) });
  await assert.rejects(pushBlob(clientFor(fake).client, "app", damaged, CHUNKED), DigestMismatchError);
  assert.equal(fake.requestsMatching({ method: "PUT" }).length, 0, "a damaged blob must not be committed");
  assert.equal(fake.requestsMatching({ method: "POST" }).length, 1, "a damaged source is not a reason to try again");

  const monolithic = blobToPush(bytes, { actually: patternBytes(SIZE, 9) });
  await assert.rejects(pushBlob(clientFor(fake).client, "other", monolithic, MONOLITHIC), (e: unknown) => e instanceof GantryError && !e.retryable);
  assert.equal(fake.blob("app", damaged.digest), undefined);
  assert.equal(fake.blob("other", damaged.digest), undefined);
});

test("a PATCH answered 503 with Retry-After waits exactly as asked, then resumes the same session from its Range", async (t) => {
  const fake = await startFakeRegistry(t);
  fake.fail({ method: "PATCH" }, { kind: "status", status: 503, headers: { "retry-after": "7" } }, { skip: 1 });
  const bytes = patternBytes(SIZE);
  const blob = blobToPush(bytes);
  const { client, waits } = clientFor(fake);
  assert.equal(await pushBlob(client, "app", blob, CHUNKED), "uploaded");
  assert.deepEqual(waits, [7000]);
  assert.deepEqual(contentRanges(fake), ["0-999", "1000-1999", "1000-1999", "2000-2999", "3000-3999", "4000-4499"]);
  assert.equal(fake.requestsMatching({ method: "POST" }).length, 1);
  assert.deepEqual(fake.blob("app", blob.digest), bytes);
});

test("429 and 503 on the POST that opens the upload are waited out (Retry-After) and sent again", async (t) => {
  const fake = await startFakeRegistry(t);
  fake.fail({ method: "POST" }, { kind: "status", status: 429, headers: { "retry-after": "2" } });
  fake.fail({ method: "POST" }, { kind: "status", status: 503 });
  const bytes = patternBytes(SIZE);
  const { client, waits } = clientFor(fake);
  assert.equal(await pushBlob(client, "app", blobToPush(bytes), MONOLITHIC), "uploaded");
  assert.deepEqual(fake.requestsMatching({ method: "POST" }).map((r) => r.answer), [429, 503, 202]);
  assert.equal(waits[0], 2000);
  assert.equal(waits.length, 2);
});

test("a commit whose answer is lost (the connection drops after the registry stored it) is found by HEAD, not sent again", async (t) => {
  const fake = await startFakeRegistry(t);
  fake.fail({ method: "PUT" }, { kind: "reset", keepBody: 0 });
  const bytes = patternBytes(SIZE);
  const blob = blobToPush(bytes);
  assert.equal(await pushBlob(clientFor(fake).client, "app", blob, CHUNKED), "uploaded");
  assert.deepEqual(fake.requests.filter((r) => r.path !== "/v2/").map((r) => [r.method, r.answer]).filter(([m]) => m !== "PATCH"),
    [["HEAD", 404], ["POST", 202], ["PUT", "reset"], ["HEAD", 200]]);
  assert.deepEqual(fake.blob("app", blob.digest), bytes);
});

test("faults that each follow progress do not add up: every other PATCH failing still completes a long upload", async (t) => {
  const fake = await startFakeRegistry(t);
  const chunks = 12;
  // PATCHes 2, 4, 6, … fail: the first succeeds, so each resumption has a Range to go on from.
  for (let i = 0; i < chunks - 1; i++) fake.fail({ method: "PATCH" }, { kind: "status", status: 503 }, { skip: i + 1 });
  const bytes = patternBytes(chunks * 1000);
  const blob = blobToPush(bytes);
  assert.equal(await pushBlob(clientFor(fake).client, "app", blob, CHUNKED), "uploaded");
  assert.equal(patches(fake).filter((r) => r.answer === 503).length, chunks - 1, "more faults than one run may hold");
  assert.equal(fake.requestsMatching({ method: "POST" }).length, 1);
  assert.deepEqual(fake.blob("app", blob.digest), bytes);
});

test("a fault that persists ends the step after maxTries with one error naming the registry, the step, the status and the tries", async (t) => {
  const fake = await startFakeRegistry(t);
  fake.fail({ method: "PATCH" }, { kind: "status", status: 503 }, { skip: 1, times: 1000 });
  const { client, waits } = clientFor(fake);
  await assert.rejects(pushBlob(client, "app", blobToPush(patternBytes(SIZE)), CHUNKED), (e: unknown) => {
    assert.ok(e instanceof RegistryError && e.retryable && e.status === 503, String(e));
    assert.match(e.message, new RegExp(`^${fake.host} failed to upload a chunk of the test blob in app \\(HTTP 503, FAULT: a scripted failure, ${DEFAULT_RETRY_POLICY.maxTries} tries in [\\d.]+ s\\); try again later$`));
    return true;
  });
  assert.equal(waits.length, DEFAULT_RETRY_POLICY.maxTries - 1);
  assert.equal(patches(fake).filter((r) => r.answer === 503).length, DEFAULT_RETRY_POLICY.maxTries);
});

test("a fault that persists ends within the budget: a Retry-After that would pass it is not waited for", async (t) => {
  const fake = await startFakeRegistry(t);
  fake.fail({ method: "PUT" }, { kind: "status", status: 503, headers: { "retry-after": "25" } }, { times: 1000 });
  const { client, waits } = clientFor(fake, undefined, { budgetMs: 60_000 });
  await assert.rejects(pushBlob(client, "app", blobToPush(patternBytes(SIZE)), MONOLITHIC),
    (e: unknown) => e instanceof RegistryError && e.status === 503 && /, 3 tries in 50\.0 s\); try again later$/.test(e.message));
  assert.deepEqual(waits, [25_000, 25_000]);
});

test("the location book: a blob it places in a sibling repository is mounted; the push is remembered", async (t) => {
  const fake = await startFakeRegistry(t);
  const bytes = patternBytes(SIZE);
  const digest = fake.putBlob("base", bytes);
  const book = new MemoryBook({ [`${fake.host} ${digest}`]: ["base"] });
  const blob = blobToPush(bytes);
  assert.equal(await pushBlob(clientFor(fake).client, "app", blob, { ...MONOLITHIC, book }), "mounted");
  assert.equal(fake.requestsMatching({ method: "POST" })[0]?.query.get("from"), "base");
  assert.equal(blob.opened(), 0);
  assert.deepEqual(await book.repositoriesWith(fake.host, blob.digest), ["app", "base"]);
});

test("a stale book entry costs one declined mount, then an upload, and is forgotten; a failing book changes nothing", async (t) => {
  const fake = await startFakeRegistry(t);
  const bytes = patternBytes(SIZE);
  const blob = blobToPush(bytes);
  const book = new MemoryBook({ [`${fake.host} ${blob.digest}`]: ["gone"] });
  assert.equal(await pushBlob(clientFor(fake).client, "app", blob, { ...MONOLITHIC, book }), "uploaded");
  assert.deepEqual(fake.requestsMatching({ method: "POST" }).map((r) => [r.query.get("from"), r.answer]), [["gone", 202]]);
  assert.deepEqual(await book.repositoriesWith(fake.host, blob.digest), ["app"]);
  assert.deepEqual(fake.blob("app", blob.digest), bytes);

  const broken = { repositoriesWith: () => { throw new Error("disk on fire"); }, remember: () => Promise.reject(new Error("no")), forget: () => Promise.reject(new Error("no")) };
  const other = blobToPush(patternBytes(SIZE, 5));
  assert.equal(await pushBlob(clientFor(fake).client, "other", other, { ...MONOLITHIC, book: broken }), "uploaded");
});

/** A location book in memory, most recent first. */
class MemoryBook implements BlobLocationBook {
  private readonly entries: Map<string, string[]>;
  constructor(initial: Record<string, string[]>) {
    this.entries = new Map(Object.entries(initial));
  }
  async repositoriesWith(registry: string, digest: string): Promise<string[]> {
    return [...this.entries.get(`${registry} ${digest}`) ?? []];
  }
  async remember(registry: string, repository: string, digest: string): Promise<void> {
    const key = `${registry} ${digest}`;
    this.entries.set(key, [repository, ...(this.entries.get(key) ?? []).filter((r) => r !== repository)]);
  }
  async forget(registry: string, repository: string, digest: string): Promise<void> {
    const key = `${registry} ${digest}`;
    this.entries.set(key, (this.entries.get(key) ?? []).filter((r) => r !== repository));
  }
}
