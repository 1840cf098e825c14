import { test } from "node:test";
import assert from "node:assert/strict";
import { InvalidReferenceError } from "../../src/model/errors.js";
import { apiHost, formatReference, manifestSelector, parseRegistryReference } from "../../src/transports/docker/reference.js";
import { isLoopbackRegistry, registryBaseUrls } from "../../src/transports/docker/endpoint.js";

const HEX = "0123456789abcdef".repeat(4);

test("references normalise as docker does", () => {
  const cases: [string, { registry: string; repository: string; tag?: string; digest?: string }][] = [
    ["docker://ubuntu", { registry: "docker.io", repository: "library/ubuntu", tag: "latest" }],
    ["ubuntu:22.04", { registry: "docker.io", repository: "library/ubuntu", tag: "22.04" }],
    ["docker://bitnami/redis:7", { registry: "docker.io", repository: "bitnami/redis", tag: "7" }],
    ["docker://docker.io/nginx", { registry: "docker.io", repository: "library/nginx", tag: "latest" }],
    ["docker://index.docker.io/library/nginx:1", { registry: "docker.io", repository: "library/nginx", tag: "1" }],
    ["docker://localhost/app", { registry: "localhost", repository: "app", tag: "latest" }],
    ["docker://localhost:5000/a/b/c:v1.2_x-y", { registry: "localhost:5000", repository: "a/b/c", tag: "v1.2_x-y" }],
    ["docker://127.0.0.1:5000/app@sha256:" + HEX, { registry: "127.0.0.1:5000", repository: "app", digest: `sha256:${HEX}` }],
    ["docker://[::1]:5000/app:1@sha256:" + HEX, { registry: "[::1]:5000", repository: "app", tag: "1", digest: `sha256:${HEX}` }],
    ["docker://ghcr.io/owner/repo__x.y-z:t", { registry: "ghcr.io", repository: "owner/repo__x.y-z", tag: "t" }],
    ["docker://Registry/app", { registry: "Registry", repository: "app", tag: "latest" }],
  ];
  for (const [input, want] of cases) {
    assert.deepEqual({ ...parseRegistryReference(input) }, want, input);
  }
});

test("a port-looking suffix without a slash is a tag, as in docker", () => {
  assert.deepEqual({ ...parseRegistryReference("localhost:5000") }, { registry: "docker.io", repository: "library/localhost", tag: "5000" });
});

test("invalid references are InvalidReferenceError naming the reference and the part at fault", () => {
  const bad: [string, RegExp][] = [
    ["docker://", /names no repository/],
    ["docker://127.0.0.1:5000/App", /"App" is not a valid repository name/],
    ["docker://host.io/a//b", /not a valid repository name/],
    ["docker://host.io/a:-bad", /"-bad" is not a valid tag/],
    ["docker://host.io/a@sha256:abc", /"sha256:abc" is not a digest/],
    ["docker://host.io/a@md5:" + HEX, /is not a digest/],
    ["docker://ho_st.io/a", /"ho_st.io" is not a valid registry host/],
    [`docker://host.io/${"a".repeat(260)}`, /longer than 255/],
  ];
  for (const [input, why] of bad) {
    assert.throws(() => parseRegistryReference(input), (err: unknown) => {
      assert.ok(err instanceof InvalidReferenceError, input);
      assert.equal(err.code, "REFERENCE_INVALID");
      assert.ok(err.message.includes(`"${input}"`), err.message);
      assert.match(err.message, why);
      return true;
    });
  }
});

test("formatting and the manifest selector", () => {
  const pinned = parseRegistryReference(`docker://h.io/a:1@sha256:${HEX}`);
  assert.equal(formatReference(pinned), `h.io/a:1@sha256:${HEX}`);
  assert.equal(manifestSelector(pinned), `sha256:${HEX}`, "the digest wins over the tag");
  assert.equal(manifestSelector(parseRegistryReference("docker://h.io/a")), "latest");
  assert.equal(apiHost("docker.io"), "registry-1.docker.io");
  assert.equal(apiHost("h.io:443"), "h.io:443");
});

test("plain HTTP for loopback only, unless TLS verification is off", () => {
  for (const host of ["localhost", "localhost:5000", "127.0.0.1:5000", "127.9.8.7", "[::1]:5000", "LOCALHOST:1"]) {
    assert.ok(isLoopbackRegistry(host), host);
    assert.deepEqual(registryBaseUrls(host), [`http://${host}`]);
    assert.deepEqual(registryBaseUrls(host, false), [`http://${host}`]);
  }
  for (const host of ["docker.io", "ghcr.io", "10.0.0.1:5000", "128.0.0.1", "localhost.example.com", "[::2]:5000"]) {
    assert.ok(!isLoopbackRegistry(host), host);
  }
  assert.deepEqual(registryBaseUrls("docker.io"), ["https://registry-1.docker.io"]);
  assert.deepEqual(registryBaseUrls("ghcr.io", false), ["https://ghcr.io", "http://ghcr.io"], "unchecked HTTPS first, then plain HTTP");
});
