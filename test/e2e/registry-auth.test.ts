import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuthError } from "../../src/model/errors.js";
import { readRegistryImage } from "../../src/transports/docker/transport.js";
import { pushImage } from "../../src/transports/docker/push.js";
import {
  dockerConfigDir, drainLayers, makeTestImage, skopeo, skopeoInspect, startCountingProxy, startRegistry, type RunningRegistry,
} from "../helpers/registry.js";

/**
 * Basic (htpasswd) and Bearer-token auth against real distribution registries; the token
 * server is a JWT issuer the registry trusts. Credentials come from the option or from a
 * docker config file; without them, or with wrong ones, the error says what to do.
 */
const USER = "alice";
const PASS = "s3cret:with:colons";
/** An environment with no docker config of the host's, so only what a test passes counts. */
const EMPTY_ENV = { HOME: "/nonexistent-gantry-home" };

for (const kind of ["htpasswd", "token"] as const) {
  describe(`registry auth: ${kind}`, () => {
    let registry: RunningRegistry;
    let work: string;

    before(async () => {
      registry = await startRegistry({ kind, users: { [USER]: PASS } });
      work = await mkdtemp(join(tmpdir(), "gantry-auth-"));
    });
    after(async () => {
      await registry?.stop();
      if (work) await rm(work, { recursive: true, force: true });
    });

    test("push and pull with --creds; skopeo with the same credentials agrees", async () => {
      const image = await makeTestImage({ label: `auth-${kind}` });
      const ref = `docker://${registry.host}/private/app:1`;
      const pushed = await pushImage(image, ref, { creds: `${USER}:${PASS}`, env: EMPTY_ENV });
      const seen = await skopeoInspect(ref, ["--creds", `${USER}:${PASS}`]);
      assert.equal(seen.Digest, pushed.digest);
      const pulled = await readRegistryImage(ref, { creds: `${USER}:${PASS}`, env: EMPTY_ENV });
      assert.equal(pulled.digest, pushed.digest);
      await drainLayers(pulled);
      if (kind === "token") {
        const scopes = registry.tokenRequests.filter((r) => r.user === USER).flatMap((r) => r.scopes);
        assert.ok(scopes.includes("repository:private/app:pull,push"), `push asked for push access: ${scopes.join(" ")}`);
        assert.ok(scopes.includes("repository:private/app:pull"), "pull asked for pull access only");
      }
    });

    test("credentials from a docker config file (base64 auth, key with scheme) and from username/password", async () => {
      const image = await makeTestImage({ label: `config-${kind}` });
      const ref = `docker://${registry.host}/private/fromconfig:1`;
      const auth = Buffer.from(`${USER}:${PASS}`).toString("base64");
      const withAuth = await dockerConfigDir(work, { auths: { [`http://${registry.host}/v2/`]: { auth } } });
      const pushed = await pushImage(image, ref, { env: { ...EMPTY_ENV, DOCKER_CONFIG: withAuth } });

      const withFields = join(work, "auth.json");
      const { writeFile } = await import("node:fs/promises");
      await writeFile(withFields, JSON.stringify({ auths: { [registry.host]: { username: USER, password: PASS } } }));
      const pulled = await readRegistryImage(ref, { env: { ...EMPTY_ENV, REGISTRY_AUTH_FILE: withFields } });
      assert.equal(pulled.digest, pushed.digest);
    });

    test("without credentials: an AuthError that names the registry and says to pass --creds", async () => {
      const image = await makeTestImage({ label: `anon-${kind}` });
      await pushImage(image, `docker://${registry.host}/private/anon:1`, { creds: `${USER}:${PASS}`, env: EMPTY_ENV });
      for (const attempt of [
        () => readRegistryImage(`docker://${registry.host}/private/anon:1`, { env: EMPTY_ENV }),
        () => pushImage(image, `docker://${registry.host}/private/anon:2`, { env: EMPTY_ENV }),
      ]) {
        await assert.rejects(attempt(), (err: unknown) => {
          assert.ok(err instanceof AuthError, `expected AuthError, got ${String(err)}`);
          assert.equal(err.code, "AUTH");
          assert.match(err.message, new RegExp(`authentication to ${registry.host.replace(/\./g, "\\.")} failed`));
          assert.match(err.message, /--creds/);
          assert.match(err.message, /log in/);
          return true;
        });
      }
    });

    test("with wrong credentials: an AuthError naming the user", async () => {
      await assert.rejects(
        readRegistryImage(`docker://${registry.host}/private/app:1`, { creds: `${USER}:wrong`, env: EMPTY_ENV }),
        (err: unknown) => err instanceof AuthError && err.message.includes(registry.host) && err.message.includes(USER)
          && !err.message.includes("wrong"),
      );
    });

    test("skopeo pushes with credentials, gantry pulls with the same ones", async () => {
      const image = await makeTestImage({ label: `skopeo-${kind}` });
      await pushImage(image, `docker://${registry.host}/private/src:1`, { creds: `${USER}:${PASS}`, env: EMPTY_ENV });
      await skopeo(["copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
        "--src-creds", `${USER}:${PASS}`, "--dest-creds", `${USER}:${PASS}`,
        `docker://${registry.host}/private/src:1`, `docker://${registry.host}/private/copied:1`]);
      const seen = await skopeoInspect(`docker://${registry.host}/private/copied:1`, ["--creds", `${USER}:${PASS}`]);
      const pulled = await readRegistryImage(`docker://${registry.host}/private/copied:1`, { creds: `${USER}:${PASS}`, env: EMPTY_ENV });
      assert.equal(pulled.digest, seen.Digest);
    });
  });
}

describe("registry auth across a redirect", () => {
  test("a blob GET redirected to another host follows without the Authorization header", async () => {
    const registry = await startRegistry({ kind: "htpasswd", users: { [USER]: PASS } });
    const basic = `Basic ${Buffer.from(`${USER}:${PASS}`).toString("base64")}`;
    // The front door is the registry as clients see it; "storage" is another origin that,
    // like a signed URL, needs no credentials from the client.
    const front = await startCountingProxy(registry.host);
    const storage = await startCountingProxy(registry.host, { addAuthorization: basic });
    try {
      const image = await makeTestImage({ label: "redirect" });
      const layerDigest = image.layers[0]!.digest;
      await pushImage(image, `docker://${front.host}/private/redirect:1`, { creds: `${USER}:${PASS}`, env: EMPTY_ENV });
      const pulled = await readRegistryImage(`docker://${front.host}/private/redirect:1`, { creds: `${USER}:${PASS}`, env: EMPTY_ENV });
      front.redirectNext((r) => r.method === "GET" && r.path.endsWith(`/blobs/${layerDigest}`), storage.host);
      await drainLayers(pulled);

      const atFront = front.requests.filter((r) => r.path.endsWith(`/blobs/${layerDigest}`) && r.method === "GET");
      assert.equal(atFront.at(-1)?.authorization, basic, "the registry itself got the credentials");
      const atStorage = storage.requests.filter((r) => r.path.endsWith(`/blobs/${layerDigest}`));
      assert.equal(atStorage.length, 1, "the redirect was followed");
      assert.equal(atStorage[0]!.authorization, undefined, "no credentials went to the other host");
    } finally {
      await front.stop();
      await storage.stop();
      await registry.stop();
    }
  });
});
