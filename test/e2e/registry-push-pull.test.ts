import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { randomBytes } from "node:crypto";
import { BlobStore } from "../../src/cache/blob-store.js";
import { sha256 } from "../../src/model/digest.js";
import { DigestMismatchError, GantryError, ImageNotFoundError } from "../../src/model/errors.js";
import { MediaType } from "../../src/model/mediatypes.js";
import { remadeImage } from "../../src/image/image.js";
import { readRegistryImage } from "../../src/transports/docker/transport.js";
import { pushImage } from "../../src/transports/docker/push.js";
import {
  drainLayers, makeTestImage, skopeo, skopeoInspect, startCountingProxy, startRegistry,
  type CountingProxy, type RunningRegistry,
} from "../helpers/registry.js";
import { FIXTURE_BASES_DIR } from "../helpers/paths.js";

const execFileP = promisify(execFile);

/**
 * Push and pull against a real distribution registry on loopback, with skopeo as the peer
 * that must agree, and a counting proxy in front to see which requests were made.
 */
describe("registry push and pull (anonymous distribution 2.8)", () => {
  let registry: RunningRegistry;
  let proxy: CountingProxy;
  let work: string;

  before(async () => {
    registry = await startRegistry();
    proxy = await startCountingProxy(registry.host);
    work = await mkdtemp(join(tmpdir(), "gantry-registry-e2e-"));
  });
  after(async () => {
    await proxy?.stop();
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test("a pushed image is what skopeo inspects, digest and layers", async () => {
    const image = await makeTestImage({ label: "push-1" });
    const result = await pushImage(image, `docker://${registry.host}/gantry/push:1`);
    const seen = await skopeoInspect(`docker://${registry.host}/gantry/push:1`);
    assert.equal(seen.Digest, result.digest);
    assert.deepEqual(seen.Layers, image.layers.map((l) => l.digest));
    assert.equal(result.uploaded, 2, "config and layer uploaded");
    const raw = JSON.parse(await skopeo(["inspect", "--raw", "--tls-verify=false", `docker://${registry.host}/gantry/push:1`])) as { mediaType: string };
    assert.equal(raw.mediaType, MediaType.ociManifest);
  });

  test("--format v2s2 pushes a Docker manifest skopeo reads", async () => {
    const image = await makeTestImage({ label: "push-v2s2" });
    const result = await pushImage(remadeImage(image, { family: "docker" }), `docker://${registry.host}/gantry/v2s2:1`);
    const raw = await skopeo(["inspect", "--raw", "--tls-verify=false", `docker://${registry.host}/gantry/v2s2:1`]);
    assert.equal(sha256(raw), result.digest);
    assert.equal((JSON.parse(raw) as { mediaType: string }).mediaType, MediaType.dockerManifest);
  });

  test("an uncompressed layer is gzipped on the way, unless told not to; the diff_id stays", async () => {
    const image = await makeTestImage({ label: "plain", compression: "none", files: { "p.txt": "plain ".repeat(1000) } });
    const plain = image.layers[0]!;
    const result = await pushImage(image, `docker://${registry.host}/gantry/plain:1`);
    const raw = JSON.parse(await skopeo(["inspect", "--raw", "--tls-verify=false", `docker://${registry.host}/gantry/plain:1`])) as { layers: { mediaType: string; digest: string; size: number }[] };
    assert.equal(raw.layers[0]!.mediaType, MediaType.ociLayerGzip);
    assert.notEqual(raw.layers[0]!.digest, plain.digest);
    assert.ok(raw.layers[0]!.size < plain.size / 10, "6 kB of repeated text compresses well");
    assert.equal(result.bytes, raw.layers[0]!.size + image.configBytes.length);
    const back = await readRegistryImage(`docker://${registry.host}/gantry/plain:1`);
    assert.equal(back.layers[0]!.diffId, plain.diffId);
    assert.equal(back.layers[0]!.compression, "gzip");
    for await (const _ of await back.layers[0]!.openUncompressed()) { /* verifies against the diff_id */ }

    await pushImage(image, `docker://${registry.host}/gantry/plain:kept`, { compressLayers: false });
    const kept = JSON.parse(await skopeo(["inspect", "--raw", "--tls-verify=false", `docker://${registry.host}/gantry/plain:kept`])) as { layers: { mediaType: string; digest: string }[] };
    assert.deepEqual(kept.layers.map((l) => [l.mediaType, l.digest]), [[MediaType.ociLayer, plain.digest]]);
  });

  test("images skopeo pushed (umoci OCI layout, docker-archive) pull with equal digests and verified layers", async () => {
    const fixtures = join(work, "umoci");
    await execFileP("bash", [join(FIXTURE_BASES_DIR, "umoci-busybox.sh"), fixtures]);
    const cases = [
      { from: `oci:${join(fixtures, "oci")}:1`, repo: "skopeo/from-oci" },
      { from: `docker-archive:${join(fixtures, "busybox.tar")}`, repo: "skopeo/from-archive" },
    ];
    for (const c of cases) {
      const digestFile = join(work, `${c.repo.replace("/", "-")}.digest`);
      await skopeo(["copy", "--quiet", "--dest-tls-verify=false", "--digestfile", digestFile, c.from, `docker://${registry.host}/${c.repo}:1`]);
      const pushedDigest = (await readFile(digestFile, "utf8")).trim();
      const inspected = await skopeoInspect(`docker://${registry.host}/${c.repo}:1`, ["--config"]) as unknown as { rootfs: { diff_ids: string[] } };

      const image = await readRegistryImage(`docker://${registry.host}/${c.repo}:1`);
      assert.equal(image.digest, pushedDigest, `${c.from}: manifest digest`);
      assert.deepEqual(image.config.rootfs.diff_ids, inspected.rootfs.diff_ids);
      const sizes = await drainLayers(image);
      assert.deepEqual(sizes, image.layers.map((l) => l.size));
      // The uncompressed stream verifies against the diff_id too.
      for await (const _ of await image.layers[0]!.openUncompressed()) { /* drain */ }
    }
  });

  test("a second push uploads no blob, and a push to a sibling repository mounts", async () => {
    const image = await makeTestImage({ label: "twice", files: { "a.txt": randomBytes(64).toString("hex") } });
    const first = await pushImage(image, `docker://${proxy.host}/gantry/twice:1`);
    assert.deepEqual([first.uploaded, first.skipped, first.mounted], [2, 0, 0]);

    proxy.reset();
    const second = await pushImage(image, `docker://${proxy.host}/gantry/twice:2`);
    assert.deepEqual([second.uploaded, second.skipped, second.mounted], [0, 2, 0]);
    assert.equal(proxy.count("PATCH") + proxy.count("PUT", /\/blobs\/uploads\//) + proxy.count("POST"), 0, "no upload request at all");
    assert.equal(second.digest, first.digest);

    // The same Image pushed to a sibling repository mounts what it just pushed: the layer,
    // and the config, which went where the layer went.
    proxy.reset();
    const third = await pushImage(image, `docker://${proxy.host}/gantry/twice-sibling:1`);
    assert.deepEqual([third.mounted, third.uploaded], [2, 0], "layer and config mounted");
    assert.equal(image.opens.count, 1, "the layer's bytes were read once, for the first push");

    // An image read from one repository mounts its layer into another of the same registry.
    const pulled = await readRegistryImage(`docker://${proxy.host}/gantry/twice:1`);
    proxy.reset();
    const mounted = await pushImage(pulled, `docker://${proxy.host}/gantry/sibling:1`);
    assert.deepEqual([mounted.mounted, mounted.uploaded, mounted.skipped], [2, 0, 0], "layer and config are mounted");
    assert.equal(proxy.count("POST", /mount=sha256%3A|mount=sha256:/), 2);
    assert.equal(proxy.count("PATCH"), 0);
    assert.equal(mounted.digest, first.digest, "the pulled manifest is pushed byte for byte");
    const seen = await skopeoInspect(`docker://${registry.host}/gantry/sibling:1`);
    assert.equal(seen.Digest, first.digest);
  });

  test("a blob above the chunk threshold goes up in PATCH chunks, and a chunk answered 503 goes again", async () => {
    const payload = randomBytes(200 * 1024); // incompressible: the gzip blob stays ~200 KiB
    const image = await makeTestImage({ label: "chunked", files: { "big.bin": payload } });
    const size = image.layers[0]!.size;
    const chunkSize = 32 * 1024;
    proxy.reset();
    let failedOnce = false;
    proxy.failNext((r) => {
      if (r.method !== "PATCH" || failedOnce) return false;
      // the third chunk fails: the registry then holds exactly two
      return proxy.count("PATCH") === 3 && (failedOnce = true);
    }, 503);
    const result = await pushImage(image, `docker://${proxy.host}/gantry/chunked:1`, { chunkThreshold: 64 * 1024, chunkSize });
    assert.ok(failedOnce, "the injected failure happened");
    const chunks = Math.ceil(size / chunkSize);
    assert.equal(proxy.count("PATCH"), chunks + 1, "one PATCH per chunk, plus the one sent again");
    assert.equal(proxy.count("GET", /\/blobs\/uploads\//), 0, "the registry answered, so it holds what it held: nothing to ask");
    assert.equal(proxy.count("POST", /\/blobs\/uploads\//), 2, "one session per blob: no restart");
    const seen = await skopeoInspect(`docker://${registry.host}/gantry/chunked:1`);
    assert.equal(seen.Digest, result.digest);
    const back = await readRegistryImage(`docker://${registry.host}/gantry/chunked:1`);
    assert.deepEqual(await drainLayers(back), [size]);
  });

  test("a two-platform index pulls the requested platform", async () => {
    const amd = await makeTestImage({ label: "amd", architecture: "amd64" });
    const arm = await makeTestImage({ label: "arm", architecture: "arm64" });
    const amdPushed = await pushImage(amd, `docker://${registry.host}/gantry/multi:amd64`);
    const armPushed = await pushImage(arm, `docker://${registry.host}/gantry/multi:arm64`);
    const index = {
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [
        { mediaType: MediaType.ociManifest, digest: amdPushed.digest, size: await manifestSize("amd64"), platform: { os: "linux", architecture: "amd64" } },
        { mediaType: MediaType.ociManifest, digest: armPushed.digest, size: await manifestSize("arm64"), platform: { os: "linux", architecture: "arm64", variant: "v8" } },
      ],
    };
    const put = await fetch(`http://${registry.host}/v2/gantry/multi/manifests/both`, {
      method: "PUT", headers: { "content-type": MediaType.ociIndex }, body: JSON.stringify(index),
    });
    assert.equal(put.status, 201, await put.text());

    const pulledArm = await readRegistryImage(`docker://${registry.host}/gantry/multi:both`, { platform: "linux/arm64" });
    assert.equal(pulledArm.config.architecture, "arm64");
    assert.equal(pulledArm.configDigest, arm.configDigest);
    const pulledAmd = await readRegistryImage(`docker://${registry.host}/gantry/multi:both`, { platform: "linux/amd64" });
    assert.equal(pulledAmd.configDigest, amd.configDigest);
    await assert.rejects(readRegistryImage(`docker://${registry.host}/gantry/multi:both`, { platform: "linux/s390x" }),
      (err: unknown) => err instanceof ImageNotFoundError && /linux\/s390x/.test(err.message) && /linux\/arm64\/v8/.test(err.message));

    async function manifestSize(tag: string): Promise<number> {
      const r = await fetch(`http://${registry.host}/v2/gantry/multi/manifests/${tag}`, { headers: { accept: MediaType.ociManifest } });
      return (await r.arrayBuffer()).byteLength;
    }
  });

  test("with a cache, a pinned image reads again after the registry is gone", async () => {
    const own = await startRegistry();
    const image = await makeTestImage({ label: "cached", files: { "c.txt": "cached\n" } });
    const pushed = await pushImage(image, `docker://${own.host}/gantry/cached:1`);
    const cache = new BlobStore(join(work, "cache"));
    const ref = `docker://${own.host}/gantry/cached@${pushed.digest}`;
    const first = await readRegistryImage(ref, { cache });
    await drainLayers(first);
    await own.stop();

    const again = await readRegistryImage(ref, { cache });
    assert.equal(again.configDigest, image.configDigest);
    assert.deepEqual(await drainLayers(again), [image.layers[0]!.size]);
    // Without the cache the registry is really gone.
    await assert.rejects(readRegistryImage(ref), (err: unknown) => err instanceof GantryError && /cannot reach/.test(err.message));
  });

  test("a pinned digest the registry has no manifest for, or whose bytes were altered, is refused", async () => {
    const image = await makeTestImage({ label: "pinned" });
    const pushed = await pushImage(image, `docker://${registry.host}/gantry/pinned:1`);
    const unknown = `sha256:${"ab".repeat(32)}`;
    await assert.rejects(readRegistryImage(`docker://${registry.host}/gantry/pinned@${unknown}`),
      (err: unknown) => err instanceof ImageNotFoundError && err.message.includes(unknown));

    // The manifest arrives with one byte more than was pushed: it no longer hashes to the pin.
    proxy.alterNext((r) => r.method === "GET" && r.path.includes("/manifests/"), (body) => Buffer.concat([body, Buffer.from(" ")]));
    await assert.rejects(readRegistryImage(`docker://${proxy.host}/gantry/pinned@${pushed.digest}`),
      (err: unknown) => err instanceof DigestMismatchError && err.message.includes(pushed.digest) && err.message.includes("pinned"));
    // And unaltered it reads.
    const ok = await readRegistryImage(`docker://${proxy.host}/gantry/pinned@${pushed.digest}`);
    assert.equal(ok.configDigest, image.configDigest);
  });
});
