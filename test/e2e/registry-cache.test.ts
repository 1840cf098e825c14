/**
 * Many machines, one cache: two "machines" share one real registry (docker-registry on
 * 127.0.0.1) and nothing else. Machine A is a checkout with an empty local cache; machine B
 * is a copy of it at another path, every file given another mtime, with its own empty local
 * cache. A builds and pushes cold with `--cache-to`; B builds the same spec with
 * `--cache-from` and must get byte-identical layers without packing any (read from its
 * progress lines), its push mounting the big layer (the registry's own log shows the 201
 * mount and no upload). Also: an archive output served by downloads from the cache,
 * `--cache-from` alone writing nothing, a record whose blob is gone, a record that is no
 * record, and a stopped cache registry: each one warning line and a correct build.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sha256 } from "../../src/model/digest.js";
import { runGantry, type GantryResult } from "../helpers/gantry.js";
import { REPO_ROOT } from "../helpers/paths.js";
import { startRegistry, type RunningRegistry } from "../helpers/registry.js";
import { skopeoJson } from "../helpers/tools.js";

const UMOCI_LAYOUT = join(REPO_ROOT, "test/fixtures/formats/oci-umoci");

interface Built { manifestDigest: string; layers: Array<{ digest: string; diffId: string; base: boolean; cached: boolean }> }

/** Writes a checkout: a 3 MB dependencies tree (its own layer) and a small app (the next). */
async function makeCheckout(dir: string): Promise<void> {
  for (let i = 0; i < 12; i++) {
    await mkdir(join(dir, "deps", `pkg${i}`), { recursive: true });
    await writeFile(join(dir, "deps", `pkg${i}`, "index.js"), `module.exports = ${i};\n`);
    await writeFile(join(dir, "deps", `pkg${i}`, "blob.bin"), randomBytes(256 * 1024));
  }
  await mkdir(join(dir, "app"), { recursive: true });
  await writeFile(join(dir, "app", "main.js"), "console.log('hello');\n");
  await writeFile(join(dir, "spec.json"), JSON.stringify({
    name: "shared", tag: "1", created: "2024-01-02T03:04:05Z", fromImage: `oci:${UMOCI_LAYOUT}:base`,
    layers: [
      { copyToRoot: [{ from: "./deps", to: "/app/deps" }] },
      { copyToRoot: [{ from: "./app", to: "/app/src" }] },
    ],
  }));
}

/** The same checkout at another path, each entry with another mtime (as a fresh clone has). */
async function copyAsOtherMachine(from: string, to: string): Promise<void> {
  execFileSync("cp", ["-r", from, to]);
  const later = new Date(Date.now() + 3_600_000);
  const touch = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await touch(path);
      await utimes(path, later, later);
    }
  };
  await touch(to);
}

function lines(r: GantryResult, needle: string): string[] {
  return r.stderr.split("\n").filter((l) => l.includes(needle));
}

async function tagsOf(registry: RunningRegistry, repository: string): Promise<string[]> {
  const res = await fetch(`http://${registry.host}/v2/${repository}/tags/list`);
  if (res.status === 404) return [];
  return ((await res.json()) as { tags: string[] | null }).tags ?? [];
}

describe("the registry cache: two machines, one registry", () => {
  let registry: RunningRegistry;
  let work: string;
  let a: string;
  let b: string;
  let built: Built;
  const cacheRepo = (): string => `docker://${registry.host}/cache`;

  /** Builds `checkout`'s spec with its own local cache `cache` (a fresh directory unless reused). */
  async function build(checkout: string, cache: string, out: string, ...flags: string[]): Promise<{ r: GantryResult; built: Built }> {
    const r = await runGantry(["--json", "--progress", "plain", "build", join(checkout, "spec.json"), "-o", out, ...flags], { env: { GANTRY_CACHE: join(work, cache) } });
    assert.equal(r.code, 0, `gantry build failed: ${r.stderr}`);
    return { r, built: JSON.parse(r.stdout.toString("utf8")) as Built };
  }

  before(async () => {
    registry = await startRegistry();
    work = await mkdtemp(join(tmpdir(), "gantry-registry-cache-"));
    a = join(work, "machine-a", "checkout");
    b = join(work, "machine-b", "somewhere", "else");
    await makeCheckout(a);
    await mkdir(join(b, ".."), { recursive: true });
    await copyAsOtherMachine(a, b);
    const cold = await build(a, "cache-a", `docker://${registry.host}/app:a`, "--cache-to", cacheRepo());
    assert.equal(lines(cold.r, "packing ").length, 2, "machine A packs both new layers");
    assert.equal(lines(cold.r, "recorded in the registry cache").length, 2, "and records both");
    built = cold.built;
  });
  after(async () => {
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test("machine B gets A's layers without packing, the same image, and its push mounts the big layer", async () => {
    const servedBefore = (await registry.served()).length;
    const { r, built: onB } = await build(b, "cache-b", `docker://${registry.host}/app-b:1`, "--cache-from", cacheRepo());
    assert.deepEqual(lines(r, "packing "), [], "nothing is packed on B");
    assert.equal(lines(r, "from the registry cache").length, 2, "both new layers come from the cache");
    assert.equal(onB.manifestDigest, built.manifestDigest, "B's image is A's, byte for byte");
    const seen = await skopeoJson<{ Digest: string; Layers: string[] }>("inspect", "--tls-verify=false", `docker://${registry.host}/app-b:1`);
    assert.equal(seen.Digest, built.manifestDigest);
    const deps = built.layers.filter((l) => !l.base)[0]!.digest;
    const served = (await registry.served()).slice(servedBefore).map((s) => ({ ...s, uri: decodeURIComponent(s.uri) }));
    assert.ok(served.some((s) => s.method === "POST" && s.uri.includes(`mount=${deps}&from=cache`) && s.status === 201),
      `the dependencies layer is mounted from the cache repository: ${JSON.stringify(served.filter((s) => s.method === "POST"))}`);
    assert.ok(!served.some((s) => s.method === "PUT" && s.uri.includes(`digest=${deps}`)), "the dependencies layer is never uploaded");
    assert.ok(!served.some((s) => s.method === "PUT" && s.uri.includes("/cache/manifests/")), "a read-only cache writes no record");
  });

  test("an archive output is served from the cache by downloads, verified, with the same layers", async () => {
    const out = join(work, "b.tar");
    const { r, built: onB } = await build(b, "cache-b-archive", `docker-archive:${out}`, "--cache-from", cacheRepo());
    assert.deepEqual(lines(r, "packing "), []);
    assert.equal(lines(r, "downloaded and verified").length, 2);
    assert.deepEqual(onB.layers.map((l) => l.diffId), built.layers.map((l) => l.diffId));
    const seen = await skopeoJson<{ Layers: string[] }>("inspect", `docker-archive:${out}`);
    assert.equal(seen.Layers.length, built.layers.length, "skopeo reads the archive");
  });

  test("--cache-from alone writes nothing to the registry, even for a layer it packs", async () => {
    const c = join(work, "machine-c");
    await copyAsOtherMachine(b, c);
    await writeFile(join(c, "app", "main.js"), "console.log('changed on C');\n");
    const tagsBefore = await tagsOf(registry, "cache");
    const { r } = await build(c, "cache-c", join(work, "c.tar"), "--cache-from", cacheRepo());
    assert.equal(lines(r, "packing ").length, 1, "the changed app layer is packed");
    assert.equal(lines(r, "from the registry cache").length, 1, "the dependencies still come from the cache");
    assert.deepEqual(await tagsOf(registry, "cache"), tagsBefore);
  });

  test("a record whose layer blob is gone from the registry: one warning, the layer is built", async () => {
    const other = await startRegistry();
    try {
      const d = join(work, "machine-d");
      await copyAsOtherMachine(a, d);
      await build(d, "cache-d1", join(work, "d1.tar"), "--cache-to", `docker://${other.host}/cache`);
      const deps = built.layers.filter((l) => !l.base)[0]!.digest;
      await rm(join(other.dir, "data/docker/registry/v2/blobs/sha256", deps.slice(7, 9), deps.slice(7)), { recursive: true });
      const { r, built: onD } = await build(d, "cache-d2", join(work, "d2.tar"), "--cache-from", `docker://${other.host}/cache`);
      assert.equal(lines(r, "warning: the registry cache").length, 1, r.stderr);
      assert.match(lines(r, "warning:")[0]!, /no longer holds/);
      assert.equal(lines(r, "packing ").length, 1, "the dependencies layer is packed again");
      assert.deepEqual(onD.layers.map((l) => l.digest), built.layers.map((l) => l.digest), "and comes out the same");
    } finally {
      await other.stop();
    }
  });

  test("a record that does not verify (another key's, or no record at all): one warning, the layer is built", async () => {
    const other = await startRegistry();
    try {
      const e = join(work, "machine-e");
      await copyAsOtherMachine(a, e);
      await build(e, "cache-e1", join(work, "e1.tar"), "--cache-to", `docker://${other.host}/cache`);
      const tags = (await tagsOf(other, "cache")).filter((t) => t.startsWith("gantry-layer-"));
      assert.equal(tags.length, 2);
      // Under the first tag, the record of the second key; under the second, a manifest that is no record.
      const manifestOf = async (tag: string): Promise<Buffer> => Buffer.from(await (await fetch(`http://${other.host}/v2/cache/manifests/${tag}`, { headers: { accept: "application/vnd.oci.image.manifest.v1+json" } })).arrayBuffer());
      const put = async (tag: string, bytes: Buffer): Promise<void> => {
        const res = await fetch(`http://${other.host}/v2/cache/manifests/${tag}`, { method: "PUT", body: bytes, headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" } });
        assert.equal(res.status, 201, await res.text());
      };
      const second = await manifestOf(tags[1]!);
      const notARecord = JSON.parse(second.toString("utf8")) as Record<string, unknown>;
      delete notARecord.annotations;
      await put(tags[0]!, second);
      await put(tags[1]!, Buffer.from(JSON.stringify(notARecord)));
      const { r, built: onE } = await build(e, "cache-e2", join(work, "e2.tar"), "--cache-from", `docker://${other.host}/cache`);
      assert.equal(lines(r, "warning: the registry cache").length, 2, r.stderr);
      assert.equal(lines(r, "packing ").length, 2, "both layers are packed");
      assert.deepEqual(onE.layers.map((l) => l.digest), built.layers.map((l) => l.digest));
      assert.notEqual(sha256(second), sha256(Buffer.from(JSON.stringify(notARecord))));
    } finally {
      await other.stop();
    }
  });

  test("a stopped cache registry: one warning line and a correct build", async () => {
    const other = await startRegistry();
    const host = other.host;
    await other.stop();
    const f = join(work, "machine-f");
    await copyAsOtherMachine(a, f);
    const { r, built: onF } = await build(f, "cache-f", join(work, "f.tar"), "--cache-from", `docker://${host}/cache`, "--cache-to", `docker://${host}/cache2`);
    const warnings = lines(r, "warning: the registry cache");
    assert.equal(warnings.length, 2, `one per repository: ${r.stderr}`);
    assert.ok(warnings.every((w) => w.includes("going on without it")));
    assert.deepEqual(onF.layers.map((l) => l.digest), built.layers.map((l) => l.digest));
  });

  test("a cache reference with a tag is refused before any work", async () => {
    const r = await runGantry(["build", join(a, "spec.json"), "-o", join(work, "never.tar"), "--cache-from", `docker://${registry.host}/cache:latest`], { env: { GANTRY_CACHE: join(work, "cache-g") } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^gantry: --cache-from .* names a tag or digest/m);
  });
});
