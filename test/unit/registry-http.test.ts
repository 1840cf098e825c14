import { test } from "node:test";
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { RegistryError } from "../../src/model/errors.js";
import { send, type HttpRequest } from "../../src/transports/docker/http.js";
import { readLimited } from "../../src/transports/docker/body.js";
import { DEFAULT_RETRY_POLICY, StepRetries, retryAfterMs, type RetryPolicy } from "../../src/transports/docker/retry.js";
import { startFakeRegistry, type FakeRegistry } from "../helpers/fake-registry.js";
import { patternBytes, recordingPolicy } from "./registry-fixtures.js";

/**
 * http.ts's `send` against the fake registry: which requests are retried and how often,
 * how long it waits (recorded, not slept, on a virtual clock), how a step's budget ends a
 * run of faults, a stalled answer, and where credentials go when a GET is redirected to
 * another origin.
 */

const PING = { path: /^\/v2\/$/ };
const MAX_TRIES = DEFAULT_RETRY_POLICY.maxTries;

/** A request to `fake` whose retry waits are recorded in `waits` instead of slept. */
function requestTo(fake: FakeRegistry, waits: number[], req: Partial<HttpRequest> & Pick<HttpRequest, "method">, policy: Partial<RetryPolicy> = {}): HttpRequest {
  const recording = recordingPolicy(policy);
  const retries = new StepRetries("fake", "answer the test", {
    ...DEFAULT_RETRY_POLICY, ...recording.policy, wait: async (ms, signal) => { waits.push(ms); await recording.policy.wait!(ms, signal); },
  });
  return { url: `${fake.url}/v2/`, idempotent: req.method === "GET" || req.method === "HEAD", retries, ...req };
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

test("a good answer between faults starts the backoff over; the run still counts every fault until the step moves forward", async (t) => {
  const fake = await startFakeRegistry(t);
  fake.fail(PING, { kind: "status", status: 503 }, { every: 2, times: 100 });
  const waits: number[] = [];
  const req = requestTo(fake, waits, { method: "GET" }, { maxTries: 4 });
  // Requests 2, 4, 6, … are answered 503: each send but the first meets one fault, then a good answer.
  for (let i = 0; i < 4; i++) assert.equal((await send(req, "fake")).status, 200);
  assert.equal(waits.length, 3);
  assert.ok(waits.every((ms) => ms >= 150 && ms <= 350), `each fault came after a good answer: ${waits.join(", ")}`);
  // A fourth fault in the same run, with no progress since the first: the step gives up.
  assert.equal((await send(req, "fake")).status, 503);
  req.retries.progress();
  assert.equal((await send(req, "fake")).status, 200, "progress starts a new run");
});

test("a GET that keeps failing is tried maxTries times, then its last answer is returned", async (t) => {
  const fake = await startFakeRegistry(t);
  fake.fail(PING, { kind: "status", status: 503 }, { times: 100 });
  const response = await send(requestTo(fake, [], { method: "GET" }), "fake");
  assert.equal(response.status, 503);
  assert.equal(fake.requests.length, MAX_TRIES);
});

test("a run of faults ends when the next wait would pass the step's budget, whatever tries are left", async (t) => {
  const fake = await startFakeRegistry(t);
  fake.fail(PING, { kind: "status", status: 503, headers: { "retry-after": "20" } }, { times: 100 });
  const waits: number[] = [];
  const response = await send(requestTo(fake, waits, { method: "GET" }, { budgetMs: 60_000 }), "fake");
  assert.equal(response.status, 503);
  assert.deepEqual(waits, [20_000, 20_000, 20_000], "three waits of 20 s fill a 60 s budget");
  assert.equal(fake.requests.length, 4);
});

test("a POST is not idempotent: a 503 or a dropped connection is reported, never sent again", async (t) => {
  const fake = await startFakeRegistry(t);
  const post = requestTo(fake, [], { method: "POST", url: `${fake.url}/v2/app/blobs/uploads/`, idempotent: false });
  fake.fail({ method: "POST" }, { kind: "status", status: 503 });
  assert.equal((await send(post, "fake")).status, 503);
  assert.equal(fake.requests.length, 1);

  fake.fail({ method: "POST" }, { kind: "reset" });
  await assert.rejects(send(post, "fake"), (e: unknown) => e instanceof RegistryError && e.retryable && /^fake failed to answer the test: the connection/.test(e.message));
  assert.equal(fake.requests.length, 2);
});

test("a request whose body is a stream is sent once even when marked idempotent: the stream cannot be replayed", async (t) => {
  const fake = await startFakeRegistry(t);
  fake.fail({ method: "PUT" }, { kind: "status", status: 503 }, { times: 5 });
  const put = requestTo(fake, [], { method: "PUT", url: `${fake.url}/v2/app/x`, idempotent: true, body: Readable.from([Buffer.from("once")]) });
  assert.equal((await send(put, "fake")).status, 503);
  assert.equal(fake.requests.length, 1);
});

test("429 and 503 wait exactly as long as Retry-After says; one longer than the budget is not waited for; without it, about 250 ms", async (t) => {
  const fake = await startFakeRegistry(t);
  const waits: number[] = [];
  fake.fail(PING, { kind: "status", status: 429, headers: { "retry-after": "2" } });
  assert.equal((await send(requestTo(fake, waits, { method: "GET" }), "fake")).status, 200);
  fake.fail(PING, { kind: "status", status: 503, headers: { "retry-after": "45" } });
  assert.equal((await send(requestTo(fake, waits, { method: "GET" }), "fake")).status, 200);
  fake.fail(PING, { kind: "status", status: 429, headers: { "retry-after": "3600" } });
  assert.equal((await send(requestTo(fake, waits, { method: "GET" }), "fake")).status, 429, "an hour is past any budget: the step gives up at once");
  fake.fail(PING, { kind: "status", status: 429 });
  assert.equal((await send(requestTo(fake, waits, { method: "GET" }), "fake")).status, 200);
  assert.deepEqual(waits.slice(0, 2), [2000, 45_000]);
  assert.equal(waits.length, 3);
  assert.ok(waits[2]! >= 150 && waits[2]! <= 350, `backoff without Retry-After: ${waits[2]}`);
  assert.deepEqual(fake.requests.map((r) => r.answer), [429, 200, 503, 200, 429, 429, 200]);
});

test("Retry-After is read as seconds or as an HTTP date", () => {
  assert.equal(retryAfterMs("7"), 7000);
  assert.equal(retryAfterMs(new Date(Date.UTC(2030, 0, 1, 0, 0, 30)).toUTCString(), Date.UTC(2030, 0, 1, 0, 0, 0)), 30_000);
  assert.equal(retryAfterMs("soon"), undefined);
  assert.equal(retryAfterMs(null), undefined);
});

test("a 4xx other than 408 and 429 is returned at once", async (t) => {
  const fake = await startFakeRegistry(t);
  fake.fail(PING, { kind: "status", status: 400 });
  assert.equal((await send(requestTo(fake, [], { method: "GET" }), "fake")).status, 400);
  assert.equal(fake.requests.length, 1);
});

test("a GET whose connection drops is tried again; when every try drops, the error names the registry, the step and the tries", async (t) => {
  const fake = await startFakeRegistry(t);
  fake.fail(PING, { kind: "reset" });
  assert.equal((await send(requestTo(fake, [], { method: "GET" }), "fake")).status, 200);
  assert.deepEqual(fake.requests.map((r) => r.answer), ["reset", 200]);

  fake.fail(PING, { kind: "reset" }, { times: 100 });
  await assert.rejects(send(requestTo(fake, [], { method: "GET" }), "the fake registry"), (e: unknown) => {
    assert.ok(e instanceof RegistryError && e.retryable, String(e));
    assert.match(e.message, new RegExp(`^fake failed to answer the test: the connection to ${fake.url} failed \\(\\w+\\), ${MAX_TRIES} tries in [\\d.]+ s; try again$`));
    return true;
  });
  assert.equal(fake.requests.length, 2 + MAX_TRIES);
});

test("an answer whose headers do not come within the stall timeout is abandoned and asked for again", { timeout: 15_000 }, async (t) => {
  const fake = await startFakeRegistry(t);
  fake.fail(PING, { kind: "stall" });
  const started = Date.now();
  const response = await send(requestTo(fake, [], { method: "GET" }, { stallMs: 200 }), "fake");
  assert.equal(response.status, 200);
  assert.deepEqual(fake.requests.map((r) => r.answer), ["stall", 200]);
  assert.ok(Date.now() - started < 5000);

  fake.fail(PING, { kind: "stall" }, { times: 100 });
  await assert.rejects(send(requestTo(fake, [], { method: "GET" }, { stallMs: 100, maxTries: 3 }), "fake"),
    (e: unknown) => e instanceof RegistryError && e.retryable && /^fake failed to answer the test: it sent nothing for 0\.1 s, 3 tries in/.test(e.message));
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
  assert.deepEqual(await readLimited(response, bytes.length), bytes);
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
