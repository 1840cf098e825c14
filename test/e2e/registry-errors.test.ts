import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { DigestMismatchError, GantryError, ImageNotFoundError, RegistryError } from "../../src/model/errors.js";
import { makeLayer } from "../../src/image/layer.js";
import { readRegistryImage } from "../../src/transports/docker/transport.js";
import { pushImage } from "../../src/transports/docker/push.js";
import {
  drainLayers, freePort, makeTestImage, startCountingProxy, startRegistry, type CountingProxy, type RunningRegistry,
} from "../helpers/registry.js";

/**
 * What goes wrong with registries, against real ones: unknown repositories and tags, a
 * registry that is down, transient 5xx answers (retried for idempotent requests only) and a
 * token the registry stops accepting (renewed once).
 */
const EMPTY_ENV = { HOME: "/nonexistent-gantry-home" };

describe("registry errors and retries", () => {
  let registry: RunningRegistry;
  let proxy: CountingProxy;

  before(async () => {
    registry = await startRegistry();
    proxy = await startCountingProxy(registry.host);
  });
  after(async () => {
    await proxy?.stop();
    await registry?.stop();
  });

  test("an unknown repository or tag is IMAGE_NOT_FOUND naming the reference", async () => {
    await pushImage(await makeTestImage({ label: "known" }), `docker://${registry.host}/gantry/known:1`);
    for (const ref of [`${registry.host}/gantry/unknown:1`, `${registry.host}/gantry/known:nope`]) {
      await assert.rejects(readRegistryImage(`docker://${ref}`, { env: EMPTY_ENV }), (err: unknown) => {
        assert.ok(err instanceof ImageNotFoundError, String(err));
        assert.equal(err.code, "IMAGE_NOT_FOUND");
        assert.ok(err.message.startsWith(`${ref} was not found`), err.message);
        assert.match(err.message, /MANIFEST_UNKNOWN|NAME_UNKNOWN/);
        return true;
      });
    }
  });

  test("a registry that is down is one sentence: cannot reach HOST", async () => {
    const port = await freePort();
    for (const attempt of [
      () => readRegistryImage(`docker://127.0.0.1:${port}/gantry/x:1`, { env: EMPTY_ENV }),
      async () => pushImage(await makeTestImage(), `docker://127.0.0.1:${port}/gantry/x:1`, { env: EMPTY_ENV }),
    ]) {
      await assert.rejects(attempt(), (err: unknown) => {
        assert.ok(err instanceof RegistryError, String(err));
        assert.match(err.message, new RegExp(`^cannot reach 127\\.0\\.0\\.1:${port}: `));
        assert.match(err.message, /check that the registry is running/);
        assert.ok(!err.message.includes("\n"));
        return true;
      });
    }
  });

  test("an aborted signal stops a pull and a push with ABORTED", async () => {
    const image = await makeTestImage({ label: "abort" });
    await pushImage(image, `docker://${registry.host}/gantry/abort:1`);
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(readRegistryImage(`docker://${registry.host}/gantry/abort:1`, { signal: controller.signal }),
      (err: unknown) => err instanceof GantryError && err.code === "ABORTED");
    await assert.rejects(pushImage(image, `docker://${registry.host}/gantry/abort:2`, { signal: controller.signal }),
      (err: unknown) => err instanceof GantryError && err.code === "ABORTED");
  });

  test("a 503 on an idempotent GET is retried; as many in a row as the policy's tries give up with a retryable error", async () => {
    const image = await makeTestImage({ label: "retry" });
    await pushImage(image, `docker://${registry.host}/gantry/retry:1`);
    proxy.reset();
    const isManifestGet = (r: { method: string; path: string }): boolean => r.method === "GET" && r.path.includes("/manifests/");
    proxy.failNext(isManifestGet, 503);
    const pulled = await readRegistryImage(`docker://${proxy.host}/gantry/retry:1`);
    assert.equal(pulled.configDigest, image.configDigest);
    assert.equal(proxy.requests.filter(isManifestGet).length, 2, "the manifest GET was sent twice");

    proxy.reset();
    for (let i = 0; i < 3; i++) proxy.failNext(isManifestGet, 503);
    await assert.rejects(readRegistryImage(`docker://${proxy.host}/gantry/retry:1`, { retry: { maxTries: 3 } }), (err: unknown) =>
      err instanceof RegistryError && err.retryable && err.status === 503 && /, 3 tries in [\d.]+ s\); try again later$/.test(err.message));
    assert.equal(proxy.requests.filter(isManifestGet).length, 3, "bounded: three tries");
  });

  test("a layer whose bytes do not match its digest is not pushed, and the error names it", async () => {
    const image = await makeTestImage({ label: "corrupt", files: { "x.txt": "x".repeat(5000) } });
    const good = image.layers[0]!;
    // Same declared digest and size, other bytes: what a damaged archive would give.
    const bad = makeLayer({
      digest: good.digest, diffId: good.diffId, size: good.size, compression: good.compression, describe: "the damaged layer",
      openRaw: async () => {
        const parts: Buffer[] = [];
        for await (const c of await good.open()) parts.push(c as Buffer);
        const bytes = Buffer.concat(parts);
        bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1);
        return Readable.from([bytes]);
      },
    });
    for (const threshold of [undefined, 1024]) {
      await assert.rejects(pushImage({ ...image, layers: [bad] }, `docker://${registry.host}/gantry/corrupt:1`, threshold ? { chunkThreshold: threshold, chunkSize: 512 } : {}),
        (err: unknown) => err instanceof DigestMismatchError && err.message.includes("the damaged layer"));
    }
    const head = await fetch(`http://${registry.host}/v2/gantry/corrupt/blobs/${good.digest}`, { method: "HEAD" });
    assert.equal(head.status, 404, "the registry holds no such blob");
  });

  test("a 500 answered to a blob PUT goes again to the same session: the registry did not act on it", async () => {
    const image = await makeTestImage({ label: "restart" });
    proxy.reset();
    proxy.failNext((r) => r.method === "PUT" && r.path.includes("/blobs/uploads/"), 500);
    const result = await pushImage(image, `docker://${proxy.host}/gantry/restart:1`, { concurrency: 1 });
    assert.equal(result.uploaded, 2);
    assert.equal(proxy.count("POST", /\/blobs\/uploads\//), 2, "one session per blob");
    assert.equal(proxy.count("PUT", /\/blobs\/uploads\//), 3, "one PUT per blob, plus the one sent again");
    assert.equal(image.opens.count, 1, "the layer was read once: it was the config's PUT that failed");
    const back = await readRegistryImage(`docker://${registry.host}/gantry/restart:1`);
    await drainLayers(back);
  });
});

describe("registry token renewal", () => {
  let registry: RunningRegistry;
  let proxy: CountingProxy;

  before(async () => {
    registry = await startRegistry({ kind: "token", users: { bob: "pw" } });
    proxy = await startCountingProxy(registry.host);
  });
  after(async () => {
    await proxy?.stop();
    await registry?.stop();
  });

  test("a 401 in the middle of a session fetches a new token and tries once more", async () => {
    const image = await makeTestImage({ label: "renew" });
    await pushImage(image, `docker://${proxy.host}/team/renew:1`, { creds: "bob:pw", env: EMPTY_ENV });
    const tokensBefore = registry.tokenRequests.length;
    // The config GET is answered 401 once, as a registry does when a token expired early.
    proxy.failNext((r) => r.method === "GET" && r.path.includes(`/blobs/${image.configDigest}`), 401);
    const pulled = await readRegistryImage(`docker://${proxy.host}/team/renew:1`, { creds: "bob:pw", env: EMPTY_ENV });
    assert.equal(pulled.configDigest, image.configDigest);
    assert.equal(registry.tokenRequests.length - tokensBefore, 2, "one token for the pull, one renewed after the 401");
  });

  test("a token server that refuses the credentials is an AuthError, not a retry loop", async () => {
    const before = registry.tokenRequests.length;
    await assert.rejects(readRegistryImage(`docker://${proxy.host}/team/renew:1`, { creds: "bob:nope", env: EMPTY_ENV }),
      (err: unknown) => err instanceof GantryError && err.code === "AUTH" && /token server/.test(err.message));
    assert.equal(registry.tokenRequests.length, before, "refused requests are not logged as served");
  });
});
