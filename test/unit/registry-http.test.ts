import { test } from "node:test";
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { RegistryError } from "../../src/model/errors.js";
import { MAX_TRIES, send, type HttpRequest } from "../../src/transports/docker/http.js";
import { startFakeRegistry, type FakeRegistry } from "../helpers/fake-registry.js";
import { patternBytes } from "./registry-fixtures.js";

/**
 * http.ts's `send` against the fake registry: which requests are retried and how often,
 * how long it waits (recorded, not slept), and where credentials go when a GET is
 * redirected to another origin.
 */

const PING = { path: /^\/v2\/$/ };

/** A request to `fake` whose retry waits are recorded in `waits` instead of slept. */
function requestTo(fake: FakeRegistry, waits: number[], req: Partial<HttpRequest> & Pick<HttpRequest, "method">): HttpRequest {
  return { url: `${fake.url}/v2/`, idempotent: req.method === "GET" || req.method === "HEAD", retryWait: async (ms) => { waits.push(ms); }, ...req };
}

test("an idempotent GET that gets 503 twice, then 200, succeeds on the third try, backing off more each time", async (t) => {
  const fake = await startFakeRegistry(t);
  fake.fail(PING, { kind: "status", status: 503 }, { times: 2 });
  const waits: number[] = [];
  const response = await send(requestTo(fake, waits, { method: "GET" }), "fake");
  assert.equal(response.status, 200);
  assert.deepEqual(fake.requests.map((r) => r.answer), [503, 503, 200]);
  assert.equal(waits.length, 2);
  assert.ok(waits[0]! > 0 && waits[1]! > waits[0]!, `backoff should grow: ${waits.join(", ")}`);
});

test("a GET that keeps failing is tried MAX_TRIES times, then its last answer is returned", async (t) => {
  const fake = await startFakeRegistry(t);
  fake.fail(PING, { kind: "status", status: 503 }, { times: 100 });
  const response = await send(requestTo(fake, [], { method: "GET" }), "fake");
  assert.equal(response.status, 503);
  assert.equal(fake.requests.length, MAX_TRIES);
});

test("503 on the Nth request only: the requests before it are not disturbed", async (t) => {
  const fake = await startFakeRegistry(t);
  fake.fail(PING, { kind: "status", status: 503 }, { skip: 1 });
  const waits: number[] = [];
  assert.equal((await send(requestTo(fake, waits, { method: "GET" }), "fake")).status, 200);
  assert.equal((await send(requestTo(fake, waits, { method: "GET" }), "fake")).status, 200);
  assert.deepEqual(fake.requests.map((r) => r.answer), [200, 503, 200]);
  assert.equal(waits.length, 1);
});

test("a POST is not idempotent: a 503 or a dropped connection is reported, never sent again", async (t) => {
  const fake = await startFakeRegistry(t);
  const post = requestTo(fake, [], { method: "POST", url: `${fake.url}/v2/app/blobs/uploads/`, idempotent: false });
  fake.fail({ method: "POST" }, { kind: "status", status: 503 });
  assert.equal((await send(post, "fake")).status, 503);
  assert.equal(fake.requests.length, 1);

  fake.fail({ method: "POST" }, { kind: "reset" });
  await assert.rejects(send(post, "fake"), (e: unknown) => e instanceof RegistryError && e.retryable && /cannot reach fake/.test(e.message));
  assert.equal(fake.requests.length, 2);
});

test("a request whose body is a stream is sent once even when marked idempotent: the stream cannot be replayed", async (t) => {
  const fake = await startFakeRegistry(t);
  fake.fail({ method: "PUT" }, { kind: "status", status: 503 }, { times: 5 });
  const put = requestTo(fake, [], { method: "PUT", url: `${fake.url}/v2/app/x`, idempotent: true, body: Readable.from([Buffer.from("once")]) });
  assert.equal((await send(put, "fake")).status, 503);
  assert.equal(fake.requests.length, 1);
});

test("429 waits as long as Retry-After says, capped at ten seconds; without it, the first backoff is about 250 ms", async (t) => {
  const fake = await startFakeRegistry(t);
  const waits: number[] = [];
  fake.fail(PING, { kind: "status", status: 429, headers: { "retry-after": "2" } });
  assert.equal((await send(requestTo(fake, waits, { method: "GET" }), "fake")).status, 200);
  fake.fail(PING, { kind: "status", status: 429, headers: { "retry-after": "3600" } });
  assert.equal((await send(requestTo(fake, waits, { method: "GET" }), "fake")).status, 200);
  fake.fail(PING, { kind: "status", status: 429 });
  assert.equal((await send(requestTo(fake, waits, { method: "GET" }), "fake")).status, 200);
  assert.deepEqual(waits.slice(0, 2), [2000, 10_000]);
  assert.ok(waits[2]! >= 150 && waits[2]! <= 350, `backoff without Retry-After: ${waits[2]}`);
  assert.deepEqual(fake.requests.map((r) => r.answer), [429, 200, 429, 200, 429, 200]);
});

test("a 4xx other than 408 and 429 is returned at once", async (t) => {
  const fake = await startFakeRegistry(t);
  fake.fail(PING, { kind: "status", status: 400 });
  assert.equal((await send(requestTo(fake, [], { method: "GET" }), "fake")).status, 400);
  assert.equal(fake.requests.length, 1);
});

test("a GET whose connection drops is tried again; when every try drops, the error is retryable and names the registry", async (t) => {
  const fake = await startFakeRegistry(t);
  fake.fail(PING, { kind: "reset" });
  assert.equal((await send(requestTo(fake, [], { method: "GET" }), "fake")).status, 200);
  assert.deepEqual(fake.requests.map((r) => r.answer), ["reset", 200]);

  fake.fail(PING, { kind: "reset" }, { times: 100 });
  await assert.rejects(send(requestTo(fake, [], { method: "GET" }), "the fake registry"),
    (e: unknown) => e instanceof RegistryError && e.retryable && e.message.includes("the fake registry"));
  assert.equal(fake.requests.length, 2 + MAX_TRIES);
});

test("a blob GET redirected to storage on another origin: Authorization goes to the registry only, the bytes arrive", async (t) => {
  const fake = await startFakeRegistry(t);
  const storage = await startFakeRegistry(t);
  fake.redirectBlobsTo(storage);
  const bytes = patternBytes(5000);
  const digest = fake.putBlob("app", bytes);
  const response = await send(requestTo(fake, [], {
    method: "GET", url: `${fake.url}/v2/app/blobs/${digest}`, authorization: "Bearer registry-token",
  }), "fake");
  assert.equal(response.status, 200);
  assert.deepEqual(Buffer.from(await response.arrayBuffer()), bytes);
  assert.equal(fake.requests[0]?.answer, 307);
  assert.equal(fake.requests[0]?.authorization, "Bearer registry-token");
  assert.equal(storage.requests.length, 1);
  assert.equal(storage.requests[0]?.authorization, undefined, "the registry's credentials leaked to storage");
});

test("redirects are not followed for a POST, and a redirect loop ends with an error after a bounded number of hops", async (t) => {
  const fake = await startFakeRegistry(t);
  fake.fail({ method: "POST" }, { kind: "status", status: 307, headers: { location: "/elsewhere" } });
  const post = requestTo(fake, [], { method: "POST", url: `${fake.url}/v2/app/blobs/uploads/`, idempotent: false });
  assert.equal((await send(post, "fake")).status, 307);
  assert.equal(fake.requests.length, 1);

  fake.fail({ path: /^\/loop$/ }, { kind: "status", status: 302, headers: { location: "/loop" } }, { times: 100 });
  await assert.rejects(send(requestTo(fake, [], { method: "GET", url: `${fake.url}/loop` }), "fake"),
    (e: unknown) => e instanceof RegistryError && /redirected GET \/loop more than \d+ times/.test(e.message) && !e.retryable);
  const hops = fake.requests.length - 1;
  assert.ok(hops > 1 && hops <= 10, `a loop should be cut short, saw ${hops} requests`);
});
