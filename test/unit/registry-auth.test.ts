import { test } from "node:test";
import assert from "node:assert/strict";
import { AuthError } from "../../src/model/errors.js";
import type { Scope } from "../../src/transports/docker/auth.js";
import type { RegistryClient } from "../../src/transports/docker/client.js";
import { discard } from "../../src/transports/docker/http.js";
import { basicValue, startFakeRegistry, type FakeRegistry } from "../helpers/fake-registry.js";
import { clientFor, patternBytes } from "./registry-fixtures.js";

/**
 * RegistryClient and Authenticator against the fake registry: what is sent after a Basic
 * or a Bearer challenge, how many token requests a session makes and with which service
 * and scope, and that refused credentials end in one AuthError rather than a loop.
 */

const PULL = (repository: string): Scope => ({ repository, actions: ["pull"] });
const PUSH = (repository: string): Scope => ({ repository, actions: ["pull", "push"] });

/** GETs a blob the fake holds in `repository` and returns the status. */
async function getBlob(client: RegistryClient, fake: FakeRegistry, repository: string, scopes: Scope[] = [PULL(repository)]): Promise<number> {
  const digest = fake.putBlob(repository, patternBytes(100));
  const response = await client.request({ method: "GET", url: `/v2/${repository}/blobs/${digest}`, scopes, idempotent: true, retries: client.step("fetch a blob") });
  await discard(response);
  return response.status;
}

const blobGets = (fake: FakeRegistry) => fake.requestsMatching({ method: "GET", path: /\/blobs\/sha256:/ });

test("a Basic challenge at the ping: every later request carries the credentials, the ping is made once", async (t) => {
  const fake = await startFakeRegistry(t, { auth: { kind: "basic", user: "alice", password: "pa:ss" } });
  const { client } = clientFor(fake, "alice:pa:ss");
  assert.equal(await getBlob(client, fake, "app"), 200);
  assert.equal(await getBlob(client, fake, "app"), 200);
  assert.deepEqual(fake.requests.map((r) => [r.path.replace(/sha256:.*/, "D"), r.authorization, r.answer]), [
    ["/v2/", undefined, 401],
    ["/v2/app/blobs/D", basicValue("alice", "pa:ss"), 200],
    ["/v2/app/blobs/D", basicValue("alice", "pa:ss"), 200],
  ]);
});

test("a 401 Basic challenge on a request the ping let through: the request is sent again once, with credentials", async (t) => {
  const fake = await startFakeRegistry(t);
  fake.fail({ path: /\/blobs\// }, { kind: "status", status: 401, headers: { "www-authenticate": 'Basic realm="r"' } });
  const { client } = clientFor(fake, "bob:pw");
  assert.equal(await getBlob(client, fake, "app"), 200);
  assert.deepEqual(blobGets(fake).map((r) => [r.authorization, r.answer]), [[undefined, 401], [basicValue("bob", "pw"), 200]]);
});

test("wrong Basic credentials: one AuthError naming the registry, repository and user, after exactly one more try", async (t) => {
  const fake = await startFakeRegistry(t, { auth: { kind: "basic", user: "alice", password: "right" } });
  const { client, waits } = clientFor(fake, "alice:wrong");
  await assert.rejects(getBlob(client, fake, "team/app"), (e: unknown) =>
    e instanceof AuthError && e.message.includes(fake.host) && e.message.includes("team/app") && e.message.includes("alice"));
  assert.equal(blobGets(fake).length, 2);
  assert.deepEqual(waits, [], "a refusal is not a transient failure");
});

test("no credentials for a Basic registry: an AuthError saying none were found, after one more try", async (t) => {
  const fake = await startFakeRegistry(t, { auth: { kind: "basic", user: "alice", password: "right" } });
  await assert.rejects(getBlob(clientFor(fake).client, fake, "app"), (e: unknown) =>
    e instanceof AuthError && e.message.includes(fake.host) && /none were found/.test(e.message));
  assert.deepEqual(blobGets(fake).map((r) => r.authorization), [undefined, undefined]);
});

test("a Bearer challenge: one token request with the service and scope, the token reused for that scope, another fetched for push", async (t) => {
  const fake = await startFakeRegistry(t, { auth: { kind: "bearer", service: "fake-service", user: "carol", password: "pw" } });
  const { client } = clientFor(fake, "carol:pw");
  assert.equal(await getBlob(client, fake, "team/app"), 200);
  assert.equal(await getBlob(client, fake, "team/app"), 200);
  assert.deepEqual(fake.tokenRequests, [
    { service: "fake-service", scopes: ["repository:team/app:pull"], authorization: basicValue("carol", "pw") },
  ]);
  assert.deepEqual(blobGets(fake).map((r) => r.authorization), ["Bearer token-1", "Bearer token-1"]);

  assert.equal(await getBlob(client, fake, "team/app", [PUSH("team/app")]), 200);
  assert.equal(await getBlob(client, fake, "team/app"), 200);
  assert.deepEqual(fake.tokenRequests.map((r) => r.scopes), [["repository:team/app:pull"], ["repository:team/app:pull,push"]]);
  assert.equal(fake.requestsMatching({ path: /^\/v2\/$/ }).length, 1, "the ping is made once per client");
});

test("concurrent first requests share one ping and one token", async (t) => {
  const fake = await startFakeRegistry(t, { auth: { kind: "bearer", service: "svc" } });
  const { client } = clientFor(fake);
  assert.deepEqual(await Promise.all([getBlob(client, fake, "app"), getBlob(client, fake, "app"), getBlob(client, fake, "app")]), [200, 200, 200]);
  assert.equal(fake.requestsMatching({ path: /^\/v2\/$/ }).length, 1);
  assert.equal(fake.tokenRequests.length, 1);
});

test("a registry whose ping is open but whose repository answers a Bearer challenge: the token is fetched then", async (t) => {
  const fake = await startFakeRegistry(t, { auth: { kind: "bearer", service: "svc" } });
  fake.fail({ path: /^\/v2\/$/ }, { kind: "status", status: 200 });
  const { client } = clientFor(fake);
  assert.equal(await getBlob(client, fake, "app"), 200);
  assert.deepEqual(blobGets(fake).map((r) => [r.authorization, r.answer]), [[undefined, 401], ["Bearer token-1", 200]]);
  assert.deepEqual(fake.tokenRequests.map((r) => r.scopes), [["repository:app:pull"]]);
});

test("an anonymous client asks the token server without Authorization", async (t) => {
  const fake = await startFakeRegistry(t, { auth: { kind: "bearer", service: "svc" } });
  const { client } = clientFor(fake);
  assert.equal(await getBlob(client, fake, "app"), 200);
  assert.deepEqual(fake.tokenRequests, [{ service: "svc", scopes: ["repository:app:pull"], authorization: undefined }]);
});

test("a token that still gets 401: the token is renewed once, then an AuthError names the registry and repository", async (t) => {
  const fake = await startFakeRegistry(t, { auth: { kind: "bearer", service: "svc", user: "dave", password: "pw", denied: ["secret/app"] } });
  const { client, waits } = clientFor(fake, "dave:pw");
  await assert.rejects(getBlob(client, fake, "secret/app"), (e: unknown) =>
    e instanceof AuthError && e.message.includes(fake.host) && e.message.includes("secret/app"));
  assert.equal(fake.tokenRequests.length, 2);
  assert.deepEqual(blobGets(fake).map((r) => [r.authorization, r.answer]), [["Bearer token-1", 401], ["Bearer token-2", 401]]);
  assert.deepEqual(waits, []);
});

test("credentials the token server refuses: one AuthError naming the user, and no retry loop", async (t) => {
  const fake = await startFakeRegistry(t, { auth: { kind: "bearer", service: "svc", user: "erin", password: "right" } });
  const { client, waits } = clientFor(fake, "erin:wrong");
  await assert.rejects(getBlob(client, fake, "app"), (e: unknown) =>
    e instanceof AuthError && e.message.includes(fake.host) && e.message.includes("erin") && /token server/.test(e.message));
  assert.equal(fake.tokenRequests.length, 1);
  assert.equal(blobGets(fake).length, 0, "nothing is sent to the registry without a token");
  assert.deepEqual(waits, []);
});
