/**
 * Property-based fuzzing of every reader, through the library as users call it. Seeds are
 * the format fixtures other tools made (test/fixtures/formats: skopeo, podman, docker 20,
 * umoci, the legacy format, Docker 25's layout, nixpkgs 2017, zstd, a multi-arch OCI
 * archive); each case mutates one byte-wise or structurally (mutate.ts) and hands it to
 * inspect, export, copy (to an OCI layout) and diff. A registry case serves an image with
 * one response mutated (manifest bytes, its media type or digest header, a blob) to pull.
 *
 * Properties of every case: each call settles within CASE_TIMEOUT_MS; a failure is a
 * GantryError with a one-line message (no TypeError, no stack overflow); nothing is
 * written outside the case's own directory and no temporary directory is left in the
 * system's; peak RSS of the whole pass stays under MAX_RSS_MB.
 *
 * CI runs a short pass (FUZZ_RUNS, default 100 archive cases and 60 registry cases);
 * `npm run fuzz` runs 2,000 of each. A failure prints the seed and the shrunk mutation;
 * FUZZ_SEED replays it.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { gunzipSync } from "node:zlib";
import { copyImage, diffImages, exportImage, inspectImage, pullImage, GantryError } from "../../src/index.js";
import { FORMATS_FIXTURES } from "../unit/formats-fixtures.js";
import { ownerTag } from "../../src/util/temp-names.js";
import { applyBytes, applyTar, byteMutation, mutateJson, readTar, tarMutation, writeTar, type ByteMutation, type JsonMutation, type TarMutation } from "./mutate.js";

const RUNS = Number(process.env["FUZZ_RUNS"] ?? 100);
const REGISTRY_RUNS = Number(process.env["FUZZ_REGISTRY_RUNS"] ?? Math.ceil(RUNS * 0.6));
const SEED = process.env["FUZZ_SEED"] !== undefined ? Number(process.env["FUZZ_SEED"]) : undefined;
const CASE_TIMEOUT_MS = 30_000;
const MAX_RSS_MB = 768;

const SEEDS = ["skopeo-app.tar", "podman-multi.tar", "docker20-multi.tar", "legacy.tar", "docker25-blobs.tar", "nix2017.tar", "zstd-layer.tar", "oci-multiarch.tar"];

let peakRss = 0;
const sampler = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage().rss); }, 20);
sampler.unref();
after(() => clearInterval(sampler));

const counts = { cases: 0, calls: 0, failedCleanly: 0, succeeded: 0 };

/** gantry's temporary directories made by this process (their names carry its owner tag). */
async function gantryTemps(): Promise<Set<string>> {
  return new Set((await readdir(tmpdir())).filter((n) => n.startsWith("gantry-") && n.includes(ownerTag())));
}

/** Runs `call`; a rejection must be a GantryError on one line; a hang is a failure. Resolves to whether it succeeded. */
async function settles(what: string, call: () => Promise<unknown>): Promise<boolean> {
  counts.calls++;
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} did not settle in ${CASE_TIMEOUT_MS} ms`)), CASE_TIMEOUT_MS); });
  try {
    await Promise.race([call(), hang]);
    counts.succeeded++;
    return true;
  } catch (err) {
    if (err instanceof Error && err.message.includes("did not settle")) throw err;
    assert.ok(err instanceof GantryError, `${what} failed with ${(err as Error)?.constructor?.name}: ${(err as Error)?.stack ?? String(err)}`);
    assert.ok(err.message.length > 0 && !err.message.includes("\n"), `${what}: a one-line message, got ${JSON.stringify(err.message)}`);
    counts.failedCleanly++;
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** Each case in its own directory inside `sandbox`; afterwards the sandbox holds that directory alone. */
async function inCase(sandbox: string, body: (dir: string) => Promise<void>): Promise<void> {
  counts.cases++;
  const dir = join(sandbox, "case");
  await mkdir(dir);
  try {
    await body(dir);
    assert.deepEqual(await readdir(sandbox), ["case"], "nothing written beside the case directory");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Each layer of the layout's first image, decompressed (gzip, zstd or none), hashes to its config's diff_id. */
async function assertLayersMatchDiffIds(layout: string): Promise<void> {
  const blob = (digest: string): Promise<Buffer> => readFile(join(layout, "blobs", "sha256", digest.slice("sha256:".length)));
  const index = JSON.parse(await readFile(join(layout, "index.json"), "utf8")) as { manifests: { digest: string }[] };
  let manifest = JSON.parse((await blob(index.manifests[0]!.digest)).toString("utf8")) as { manifests?: { digest: string }[]; config: { digest: string }; layers: { digest: string; mediaType: string }[] };
  if (manifest.manifests) manifest = JSON.parse((await blob(manifest.manifests[0]!.digest)).toString("utf8")) as typeof manifest;
  const config = JSON.parse((await blob(manifest.config.digest)).toString("utf8")) as { rootfs: { diff_ids: string[] } };
  for (const [i, layer] of manifest.layers.entries()) {
    const bytes = await blob(layer.digest);
    const plain = bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes)
      : bytes.length >= 4 && bytes.readUInt32LE(0) === 0xfd2fb528 ? execFileSync("zstd", ["-dc"], { input: bytes, maxBuffer: 1 << 30 })
        : bytes;
    assert.equal(`sha256:${createHash("sha256").update(plain).digest("hex")}`, config.rootfs.diff_ids[i], `layer ${i + 1} of the copy is not its diff_id`);
  }
}

type ArchiveMutation = { seed: string; bytes?: ByteMutation | undefined; tar?: TarMutation[] };

const archiveCase: fc.Arbitrary<ArchiveMutation> = fc.record({
  seed: fc.constantFrom(...SEEDS),
  bytes: fc.option(byteMutation, { nil: undefined }),
  tar: fc.array(tarMutation, { minLength: 0, maxLength: 3 }),
}, { requiredKeys: ["seed", "tar"] });

test("every reader, fed mutated archives, settles with a GantryError or a result, writing only where asked", async (t) => {
  const sandbox = await mkdtemp(join(tmpdir(), "gantry-fuzz-"));
  t.after(() => rm(sandbox, { recursive: true, force: true }));
  const seeds = new Map<string, Buffer>();
  for (const s of SEEDS) seeds.set(s, await readFile(join(FORMATS_FIXTURES, s)));
  const tempsBefore = await gantryTemps();

  await fc.assert(fc.asyncProperty(archiveCase, async (m) => {
    let bytes = seeds.get(m.seed)!;
    if (m.tar && m.tar.length > 0) {
      let members = await readTar(bytes);
      for (const op of m.tar) members = applyTar(members, op);
      bytes = await writeTar(members);
    }
    if (m.bytes) bytes = applyBytes(bytes, m.bytes);
    await inCase(sandbox, async (dir) => {
      const file = join(dir, "input.tar");
      await writeFile(file, bytes);
      const env = { ...process.env, GANTRY_CACHE: join(dir, "cache") };
      await settles("inspect", () => inspectImage({ ref: file, env }));
      await settles("export", () => exportImage({ ref: file, output: join(dir, "root"), env }));
      const copied = await settles("copy", () => copyImage({ src: file, dest: `oci:${join(dir, "layout")}:x`, env }));
      // What copy wrote was verified on the way: every layer decompresses to its diff_id.
      if (copied) await assertLayersMatchDiffIds(join(dir, "layout"));
      await settles("diff", () => diffImages({ a: file, b: join(FORMATS_FIXTURES, "skopeo-app.tar"), env }));
    });
  }), { numRuns: RUNS, ...(SEED !== undefined ? { seed: SEED } : {}), endOnFailure: true });

  const leftover = [...await gantryTemps()].filter((n) => !tempsBefore.has(n));
  assert.deepEqual(leftover, [], "no temporary directory left behind");
  assert.ok(peakRss / 2 ** 20 < MAX_RSS_MB, `peak RSS ${Math.round(peakRss / 2 ** 20)} MB`);
  t.diagnostic(`archives: ${counts.cases} cases, ${counts.calls} calls (${counts.succeeded} succeeded, ${counts.failedCleanly} failed cleanly), peak RSS ${Math.round(peakRss / 2 ** 20)} MB`);
});

/** One image served as a registry would, from a seed's OCI layout (skopeo-app.tar, read as OCI). */
interface Served { manifest: Buffer; mediaType: string; blobs: Map<string, Buffer> }

async function servedImage(): Promise<Served> {
  const members = await readTar(await readFile(join(FORMATS_FIXTURES, "docker25-blobs.tar")));
  const blobs = new Map<string, Buffer>();
  for (const m of members) {
    const hex = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(m.name)?.[1];
    if (hex && m.type === "file") blobs.set(`sha256:${hex}`, m.data);
  }
  const index = JSON.parse(members.find((m) => m.name === "index.json")!.data.toString("utf8")) as { manifests: { digest: string; mediaType: string }[] };
  const top = index.manifests[0]!;
  return { manifest: blobs.get(top.digest)!, mediaType: top.mediaType, blobs };
}

type ResponseMutation =
  | { target: "manifest"; bytes?: ByteMutation | undefined; json?: JsonMutation | undefined }
  | { target: "mediaType"; value: string }
  | { target: "digestHeader"; value: string }
  | { target: "blob"; pick: number; bytes: ByteMutation }
  | { target: "blobLength"; pick: number; delta: number };

const responseMutation: fc.Arbitrary<ResponseMutation> = fc.oneof(
  fc.record({ target: fc.constant("manifest" as const), bytes: fc.option(byteMutation, { nil: undefined }), json: fc.option(fc.constantFrom<JsonMutation>(
    { kind: "retype", path: 0.1, value: "x" }, { kind: "delete", path: 0.5 }, { kind: "duplicateKey", path: 0 }, { kind: "bigNumber", path: 0.7, value: 2 ** 53 }, { kind: "raw", text: "{}" },
    { kind: "retype", path: 0.9, value: [[null]] }, { kind: "retype", path: 0.3, value: -1 }), { nil: undefined }) }),
  fc.record({ target: fc.constant("mediaType" as const), value: fc.constantFrom("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.v1+prettyjws", "text/html", "", "application/vnd.docker.distribution.manifest.list.v2+json") }),
  fc.record({ target: fc.constant("digestHeader" as const), value: fc.constantFrom(`sha256:${"0".repeat(64)}`, "md5:abc", "garbage", "") }),
  fc.record({ target: fc.constant("blob" as const), pick: fc.double({ min: 0, max: 1, noNaN: true }), bytes: byteMutation }),
  fc.record({ target: fc.constant("blobLength" as const), pick: fc.double({ min: 0, max: 1, noNaN: true }), delta: fc.constantFrom(-1, 1, -100, 1000) }),
);

/** A registry of one repository serving `served` as `fuzz/app:1`, with `mutation` applied to what it answers. */
async function serve(served: Served, mutation: ResponseMutation): Promise<{ server: Server; host: string }> {
  let manifest = served.manifest;
  if (mutation.target === "manifest") {
    if (mutation.json) { try { manifest = Buffer.from(mutateJson(manifest.toString("utf8"), mutation.json)); } catch { /* not JSON: as is */ } }
    if (mutation.bytes) manifest = applyBytes(manifest, mutation.bytes);
  }
  const blobDigests = [...served.blobs.keys()].sort();
  const picked = "pick" in mutation ? blobDigests[Math.min(blobDigests.length - 1, Math.floor(mutation.pick * blobDigests.length))] : undefined;
  const server = createServer((req, res) => {
    const url = req.url ?? "/";
    if (url === "/v2/") return void res.writeHead(200).end("{}");
    if (url.startsWith("/v2/fuzz/app/manifests/")) {
      const digest = `sha256:${createHash("sha256").update(manifest).digest("hex")}`;
      res.setHeader("Content-Type", mutation.target === "mediaType" ? mutation.value : served.mediaType);
      res.setHeader("Docker-Content-Digest", mutation.target === "digestHeader" ? mutation.value : digest);
      res.setHeader("Content-Length", String(manifest.length));
      return void res.writeHead(200).end(req.method === "HEAD" ? undefined : manifest);
    }
    const blob = /^\/v2\/fuzz\/app\/blobs\/(sha256:[0-9a-f]{64})$/.exec(url)?.[1];
    const bytes = blob === undefined ? undefined : served.blobs.get(blob);
    if (bytes === undefined) return void res.writeHead(404).end(JSON.stringify({ errors: [{ code: "BLOB_UNKNOWN", message: "blob unknown" }] }));
    let body = bytes;
    if (blob === picked && mutation.target === "blob") body = applyBytes(bytes, mutation.bytes);
    if (blob === picked && mutation.target === "blobLength") {
      // A body that is not the length announced: the connection is cut where it ends.
      res.setHeader("Content-Length", String(Math.max(0, bytes.length + mutation.delta)));
      res.writeHead(200);
      res.end(mutation.delta < 0 ? bytes.subarray(0, Math.max(0, bytes.length + mutation.delta)) : bytes);
      if (mutation.delta > 0) setTimeout(() => req.socket.destroy(), 50);
      return;
    }
    res.setHeader("Content-Length", String(body.length));
    res.writeHead(200).end(req.method === "HEAD" ? undefined : body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, host: `127.0.0.1:${(server.address() as AddressInfo).port}` };
}

test("pull, fed mutated registry answers, settles with a GantryError or a verified image", async (t) => {
  const sandbox = await mkdtemp(join(tmpdir(), "gantry-fuzz-"));
  t.after(() => rm(sandbox, { recursive: true, force: true }));
  const served = await servedImage();
  const before = counts.cases;
  await fc.assert(fc.asyncProperty(responseMutation, async (mutation) => {
    const { server, host } = await serve(served, mutation);
    try {
      await inCase(sandbox, async (dir) => {
        const env = { ...process.env, GANTRY_CACHE: join(dir, "cache"), GANTRY_RETRY_SECONDS: "1", GANTRY_STALL_SECONDS: "2" };
        await settles("pull", () => pullImage({ ref: `docker://${host}/fuzz/app:1`, dest: `oci:${join(dir, "layout")}:x`, env }));
      });
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }), { numRuns: REGISTRY_RUNS, ...(SEED !== undefined ? { seed: SEED } : {}), endOnFailure: true });
  t.diagnostic(`registry: ${counts.cases - before} cases; peak RSS ${Math.round(peakRss / 2 ** 20)} MB`);
});
