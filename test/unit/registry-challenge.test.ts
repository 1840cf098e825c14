import { test } from "node:test";
import assert from "node:assert/strict";
import { findChallenge, parseChallenges } from "../../src/transports/docker/challenge.js";

test("a Bearer challenge with quoted values holding commas and colons", () => {
  // As Docker Hub sends it: the scope's comma must not split the parameter.
  const header = 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull,push"';
  assert.deepEqual(parseChallenges(header), [{
    scheme: "bearer",
    params: { realm: "https://auth.docker.io/token", service: "registry.docker.io", scope: "repository:library/ubuntu:pull,push" },
  }]);
});

test("several challenges in one header, mixed quoting, spaces and escapes", () => {
  const header = 'Basic realm="Registry Realm", Bearer realm=https://t.example/token , service = "svc",error="insufficient_scope", Custom a="x\\"y"';
  const parsed = parseChallenges(header);
  assert.deepEqual(parsed.map((c) => c.scheme), ["basic", "bearer", "custom"]);
  assert.deepEqual(parsed[0]!.params, { realm: "Registry Realm" });
  assert.deepEqual(parsed[1]!.params, { realm: "https://t.example/token", service: "svc", error: "insufficient_scope" });
  assert.deepEqual(parsed[2]!.params, { a: 'x"y' });
  assert.equal(findChallenge(parsed, "bearer")?.params["service"], "svc");
});

test("scheme and parameter names are case-insensitive; nothing in, nothing out", () => {
  const [c] = parseChallenges('BEARER Realm="r",SERVICE="s"');
  assert.deepEqual(c, { scheme: "bearer", params: { realm: "r", service: "s" } });
  assert.deepEqual(parseChallenges(null), []);
  assert.deepEqual(parseChallenges(""), []);
  assert.deepEqual(parseChallenges("Basic"), [{ scheme: "basic", params: {} }]);
});
