import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { copyImage } from "../../src/ops/copy.js";
import { pushImage } from "../../src/transports/docker/push.js";
import { readRegistryImage } from "../../src/transports/docker/transport.js";
import { startFaultProxy, type FaultProxy, type FaultRule, type ProxiedRequest } from "../helpers/fault-proxy.js";
import { runGantry } from "../helpers/gantry.js";
import { FIXTURE_BASES_DIR } from "../helpers/paths.js";
import { drainLayers, makeTestImage, skopeo, skopeoInspect, startRegistry, type RunningRegistry } from "../helpers/registry.js";

const execFileP = promisify(execFile);

/**
 * Push, pull and copy through a fault proxy (test/helpers/fault-proxy.ts) in front of the
 * real CNCF registry: 503 and 429 with Retry-After, connections reset mid-upload and
 * mid-download, answers that stall, bodies cut short and Content-Lengths that lie. Each
 * operation must end with the right content, which skopeo reads back from the registry
 * itself (not through the proxy) and compares by digest. A fault that persists must end
 * the command within a bounded time in one `gantry:` line naming the registry, the step
 * and the status. And a second push of the same archive to another repository, in a new
 * process, mounts every blob from the first (the registry's own log says so), thanks to
 * the cache's book of blob locations.
 *
 * The faults injected and survived are counted by kind and printed at the end.
 */

interface Tally { injected: number; survived: number }
/** Faults by kind that operations were to survive, and faults made to persist until the command gave up. */
const survivable = new Map<string, Tally>();
const persistent = new Map<string, number>();

/** Adds what `proxy` injected to the tally of faults the operation survived (it ended with the right content). */
function survived(proxy: FaultProxy): void {
  for (const [kind, n] of proxy.injected) {
    const entry = survivable.get(kind) ?? { injected: 0, survived: 0 };
    survivable.set(kind, { injected: entry.injected + n, survived: entry.survived + n });
  }
}

/** Adds what `proxy` injected to the faults that persisted (the command was to give up). */
function persisted(proxy: FaultProxy): void {
  for (const [kind, n] of proxy.injected) persistent.set(kind, (persistent.get(kind) ?? 0) + n);
}

/** One line: survived/injected by kind and in all, then the persistent faults the commands gave up on. */
function summary(): string {
  const kinds = [...survivable.entries()].sort(([a], [b]) => a.localeCompare(b));
  const total = kinds.reduce((sum, [, t]) => ({ injected: sum.injected + t.injected, survived: sum.survived + t.survived }), { injected: 0, survived: 0 });
  const gaveUp = [...persistent.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([kind, n]) => `${kind} ${n}`).join(", ");
  return `registry faults survived/injected: ${kinds.map(([kind, t]) => `${kind} ${t.survived}/${t.injected}`).join(", ")}; `
    + `total ${total.survived}/${total.injected}; persistent faults (the command gave up, as it should): ${gaveUp || "none"}`;
}

/** Stall timeout and retry budget for gantry runs: short, so a stalled answer costs a second. */
const FAST_STALL = { GANTRY_STALL_SECONDS: "1" };
const isUpload = (r: ProxiedRequest): boolean => (r.method === "PUT" || r.method === "PATCH") && r.path.includes("/blobs/uploads/");
const isBlobGet = (digest: string) => (r: ProxiedRequest): boolean => r.method === "GET" && r.path.endsWith(`/blobs/${digest}`);

describe("registry faults", () => {
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  let work: string;
  let archive: string;
  /** What skopeo says the archive holds: the diff_ids every copy of it must show. */
  let archiveDiffIds: string[];
  /** An image skopeo pushed to the registry, for pulls and copies: its digest and layer digest. */
  let source: { ref: string; digest: string; layer: string };

  before(async () => {
    registry = await startRegistry();
    proxy = await startFaultProxy(registry.host);
    work = await mkdtemp(join(tmpdir(), "gantry-registry-faults-"));
    await execFileP("bash", [join(FIXTURE_BASES_DIR, "umoci-busybox.sh"), join(work, "fx")]);
    archive = join(work, "fx", "busybox.tar");
    archiveDiffIds = (await configOf(`docker-archive:${archive}`)).rootfs.diff_ids;
    const ref = `${registry.host}/faults/source:1`;
    await skopeo(["copy", "--quiet", "--dest-tls-verify=false", `docker-archive:${archive}`, `docker://${ref}`]);
    const seen = await skopeoInspect(`docker://${ref}`);
    source = { ref, digest: seen.Digest, layer: seen.Layers[0]! };
  });
  after(async () => {
    await proxy?.stop();
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
    console.log(summary());
  });

  async function configOf(ref: string): Promise<{ rootfs: { diff_ids: string[] } }> {
    return JSON.parse(await skopeo(["inspect", "--config", "--tls-verify=false", ref])) as { rootfs: { diff_ids: string[] } };
  }

  /**
   * The image at `repoTag` in the registry itself has manifest `digest`, and skopeo copies
   * it out whole (checking every blob against its digest) with the archive's diff_ids.
   */
  async function assertHolds(repoTag: string, digest: string): Promise<void> {
    const ref = `docker://${registry.host}/${repoTag}`;
    assert.equal((await skopeoInspect(ref)).Digest, digest, `${repoTag} in the registry`);
    const out = join(work, `check-${randomBytes(4).toString("hex")}`);
    await skopeo(["copy", "--quiet", "--src-tls-verify=false", ref, `oci:${out}:t`]);
    assert.deepEqual((await configOf(`oci:${out}:t`)).rootfs.diff_ids, archiveDiffIds);
  }

  /** `gantry ARGS` with a private cache, fast stall detection and `env` laid over. */
  function gantry(args: string[], env: NodeJS.ProcessEnv = {}): ReturnType<typeof runGantry> {
    return runGantry(args, { env: { GANTRY_CACHE: join(work, `cache-${randomBytes(4).toString("hex")}`), ...FAST_STALL, ...env } });
  }

  function script(...rules: FaultRule[]): void {
    proxy.clear();
    for (const rule of rules) proxy.inject(rule);
  }

  test("push (CLI) through 503 on every 4th request and an upload reset midway, the issue's case", async () => {
    script(
      { fault: { kind: "reset-upload", after: 200_000 }, when: (r) => isUpload(r) && (r.length ?? 0) > 200_000, times: 1 },
      { fault: { kind: "status", status: 503 }, every: 4 },
    );
    const pushed = await gantry(["--json", "push", archive, `docker://${proxy.host}/faults/issue:1`]);
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.equal(proxy.injected.get("reset-upload"), 1, "the upload was reset");
    assert.ok((proxy.injected.get("503") ?? 0) >= 3, `503s injected: ${proxy.injected.get("503")}`);
    await assertHolds("faults/issue:1", (JSON.parse(pushed.stdout.toString()) as { digest: string }).digest);
    survived(proxy);
  });

  test("push (chunked) through 429 with Retry-After on every 3rd request and two PATCHes reset midway: every Retry-After is waited out", async () => {
    const image = await makeTestImage({ label: "chunks", files: { "big.bin": randomBytes(3 << 20) } });
    script(
      { fault: { kind: "reset-upload", after: 100_000 }, when: (r) => r.method === "PATCH", every: 3, times: 2 },
      { fault: { kind: "status", status: 429, retryAfter: 1 }, every: 3 },
    );
    const started = Date.now();
    const result = await pushImage(image, `docker://${proxy.host}/faults/chunks:1`, { chunkThreshold: 512 << 10, chunkSize: 512 << 10, concurrency: 1 });
    const elapsed = Date.now() - started;
    const asked = proxy.injected.get("429") ?? 0;
    assert.equal(proxy.injected.get("reset-upload"), 2);
    assert.ok(asked >= 4, `429s injected: ${asked}`);
    assert.ok(elapsed >= asked * 1000, `${asked} Retry-After: 1 answers, but the push took ${elapsed} ms`);
    assert.ok(proxy.requests.some((r) => r.method === "GET" && r.path.includes("/blobs/uploads/")), "an upload's Range was asked");
    assert.equal((await skopeoInspect(`docker://${registry.host}/faults/chunks:1`)).Digest, result.digest);
    assert.deepEqual(await drainLayers(await readRegistryImage(`docker://${registry.host}/faults/chunks:1`)), [image.layers[0]!.size]);
    survived(proxy);
  });

  test("push (CLI) whose layer PUT and manifest PUT answers never come: each times out, and the blob is found where it landed", async () => {
    script(
      { fault: { kind: "stall" }, when: (r) => isUpload(r) && (r.length ?? 0) > 200_000, times: 1 },
      { fault: { kind: "stall" }, when: (r) => r.method === "PUT" && r.path.includes("/manifests/"), times: 1 },
    );
    const pushed = await gantry(["--json", "push", archive, `docker://${proxy.host}/faults/silent:1`]);
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.equal(proxy.injected.get("stall"), 2);
    const uploads = proxy.requests.filter((r) => isUpload(r) && (r.length ?? 0) > 200_000);
    assert.equal(uploads.length, 1, "the layer landed although its answer was lost: not sent again");
    await assertHolds("faults/silent:1", (JSON.parse(pushed.stdout.toString()) as { digest: string }).digest);
    survived(proxy);
  });

  for (const fault of [
    { kind: "reset-download", after: 100_000 },
    { kind: "truncate", after: 150_000 },
    { kind: "stall", after: 50_000 },
    { kind: "wrong-length", by: 4096 },
    { kind: "wrong-length", by: -4096 },
  ] as const) {
    const resumes = fault.kind !== "wrong-length";
    test(`pull (CLI) through ${fault.kind}${"by" in fault ? ` (${fault.by > 0 ? "+" : ""}${fault.by})` : ""} on the layer and 503 on every 4th request: ${resumes ? "resumed from the byte reached" : "asked for again"}`, async () => {
      script(
        { fault, when: isBlobGet(source.layer), times: 1 },
        { fault: { kind: "status", status: 503 }, every: 4 },
      );
      const out = join(work, `pulled-${randomBytes(4).toString("hex")}.tar`);
      const pulled = await gantry(["--json", "pull", `docker://${proxy.host}/faults/source:1`, "-o", out]);
      assert.equal(pulled.code, 0, pulled.stderr);
      assert.equal((JSON.parse(pulled.stdout.toString()) as { manifestDigest: string }).manifestDigest, source.digest);
      assert.deepEqual((await configOf(`docker-archive:${out}`)).rootfs.diff_ids, archiveDiffIds);
      assert.equal(proxy.injected.get(fault.kind), 1);
      const layerGets = proxy.requests.filter(isBlobGet(source.layer)).filter((r) => r.fault !== "503");
      if (resumes) {
        const resumed = layerGets.find((r) => r.range !== undefined);
        assert.ok(resumed, "a Range request followed the fault");
        assert.match(resumed.range!, /^bytes=[1-9]\d*-$/);
        assert.equal(resumed.status, 206, "the registry resumed the download");
      }
      survived(proxy);
    });
  }

  test("copy registry to registry through two fault proxies: faults on the way down and on the way up", async () => {
    const other = await startRegistry();
    const otherProxy = await startFaultProxy(other.host);
    try {
      script(
        { fault: { kind: "reset-download", after: 200_000 }, when: isBlobGet(source.layer), times: 1 },
        { fault: { kind: "status", status: 503 }, every: 5 },
      );
      otherProxy.inject({ fault: { kind: "reset-upload", after: 300_000 }, when: (r) => isUpload(r) && (r.length ?? 0) > 300_000, times: 1 });
      otherProxy.inject({ fault: { kind: "status", status: 429, retryAfter: 1 }, every: 4 });
      const copied = await copyImage({
        src: `docker://${proxy.host}/faults/source:1`, dest: `docker://${otherProxy.host}/faults/copied:1`,
        cacheDir: join(work, "copy-cache"), env: { ...process.env, ...FAST_STALL },
      });
      assert.equal(copied.manifestDigest, source.digest, "a copy keeps the manifest");
      assert.equal((await skopeoInspect(`docker://${other.host}/faults/copied:1`)).Digest, source.digest);
      await skopeo(["copy", "--quiet", "--src-tls-verify=false", `docker://${other.host}/faults/copied:1`, `oci:${join(work, "copied")}:t`]);
      assert.equal(proxy.injected.get("reset-download"), 1);
      assert.equal(otherProxy.injected.get("reset-upload"), 1);
      survived(proxy);
      survived(otherProxy);
    } finally {
      await otherProxy.stop();
      await other.stop();
    }
  });

  test("a 503 that persists ends the push (CLI) within the retry budget: exit 1, one gantry: line naming the registry, the step and the status", async () => {
    script({ fault: { kind: "status", status: 503, retryAfter: 1 }, when: (r) => r.method === "POST" && r.path.includes("/blobs/uploads/") });
    const started = Date.now();
    const pushed = await gantry(["push", archive, `docker://${proxy.host}/faults/down:1`], { GANTRY_RETRY_SECONDS: "4" });
    const elapsed = Date.now() - started;
    assert.equal(pushed.code, 1);
    const lines = pushed.stderr.trim().split("\n").filter((l) => l.startsWith("gantry:"));
    assert.equal(lines.length, 1, pushed.stderr);
    const host = proxy.host.replace(/\./g, "\\.");
    assert.match(lines[0]!, new RegExp(`^gantry: ${host} failed to start an upload of (layer 1|the config) of ${host}/faults/down:1 in faults/down \\(HTTP 503, UNAVAILABLE: injected by the fault proxy, \\d+ tries in [\\d.]+ s\\); try again later$`));
    assert.ok(elapsed < 20_000, `a 4 s budget, but the push took ${elapsed} ms`);
    persisted(proxy);
  });

  test("a download reset before its first byte, every time, ends the pull (CLI) within the budget: one gantry: line naming the registry, the blob and the reason", async () => {
    script({ fault: { kind: "reset-download", after: 0 }, when: isBlobGet(source.layer) });
    const started = Date.now();
    const pulled = await gantry(["pull", `docker://${proxy.host}/faults/source:1`, "-o", join(work, "never.tar")], { GANTRY_RETRY_SECONDS: "4" });
    const elapsed = Date.now() - started;
    assert.equal(pulled.code, 1);
    const lines = pulled.stderr.trim().split("\n").filter((l) => l.startsWith("gantry:"));
    assert.equal(lines.length, 1, pulled.stderr);
    assert.match(lines[0]!, new RegExp(`^gantry: ${proxy.host.replace(/\./g, "\\.")} failed to fetch the blob ${source.layer} of .*: the download was cut off after 0 of \\d+ bytes \\(\\w+\\), \\d+ tries in [\\d.]+ s; try again$`));
    assert.ok(elapsed < 20_000, `a 4 s budget, but the pull took ${elapsed} ms`);
    persisted(proxy);
  });

  test("a second push of the archive to another repository, in a new process, mounts every blob (the registry's log says so); a stale record costs one declined mount", async () => {
    const cache = join(work, "shared-cache");
    const push = async (repo: string): Promise<{ digest: string; uploaded: number; mounted: number; skipped: number }> => {
      const r = await gantry(["--json", "push", archive, `docker://${registry.host}/${repo}:1`], { GANTRY_CACHE: cache });
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout.toString()) as { digest: string; uploaded: number; mounted: number; skipped: number };
    };
    const first = await push("faults/first");
    assert.deepEqual([first.uploaded, first.mounted], [2, 0]);
    const blobs = (await skopeoInspect(`docker://${registry.host}/faults/first:1`)).Layers;
    const config = JSON.parse(await skopeo(["inspect", "--raw", "--tls-verify=false", `docker://${registry.host}/faults/first:1`])) as { config: { digest: string } };
    const digests = [...blobs, config.config.digest];

    const before = (await registry.served()).length;
    const second = await push("faults/second");
    assert.deepEqual([second.mounted, second.uploaded, second.skipped], [digests.length, 0, 0], "every blob mounted");
    assert.equal(second.digest, first.digest);
    const served = (await registry.served()).slice(before);
    for (const digest of digests) {
      const mount = `/v2/faults/second/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent("faults/first")}`;
      assert.ok(served.some((s) => s.method === "POST" && s.uri === mount && s.status === 201), `the registry mounted ${digest}`);
    }
    assert.equal(served.filter((s) => (s.method === "PUT" || s.method === "PATCH") && s.uri.includes("/blobs/uploads/")).length, 0, "no blob uploaded");
    await assertHolds("faults/second:1", first.digest);

    // A stale record, newer than the true ones: one mount declined (202), then an upload; the record is dropped.
    const stale = "faults/nowhere";
    const future = new Date(Date.now() + 3600_000);
    for (const digest of digests) {
      const dir = join(cache, "locations", encodeURIComponent(registry.host), digest.slice("sha256:".length));
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, encodeURIComponent(stale)), "");
      await utimes(join(dir, encodeURIComponent(stale)), future, future);
    }
    const mark = (await registry.served()).length;
    const third = await push("faults/third");
    assert.deepEqual([third.uploaded, third.mounted], [digests.length, 0]);
    const declined = (await registry.served()).slice(mark).filter((s) => s.method === "POST" && s.uri.includes(`from=${encodeURIComponent(stale)}`));
    assert.deepEqual(declined.map((s) => s.status), digests.map(() => 202), "one declined mount per blob");
    for (const digest of digests) {
      const dir = join(cache, "locations", encodeURIComponent(registry.host), digest.slice("sha256:".length));
      assert.ok(!(await readdir(dir)).includes(encodeURIComponent(stale)), "the stale record was dropped");
    }
    await assertHolds("faults/third:1", first.digest);
  });

  test("a build written to the registry records its blobs: the same image pushed from an archive in a new process mounts them", async () => {
    const cache = join(work, "build-cache");
    const dir = join(work, "build");
    await mkdir(join(dir, "root", "app"), { recursive: true });
    await writeFile(join(dir, "root", "app", "hello.txt"), "hello through faults\n");
    await writeFile(join(dir, "image.json"), JSON.stringify({ name: "faults/built", tag: "1", fromImage: archive, copyToRoot: ["./root"] }));
    const built = await gantry(["--json", "build", join(dir, "image.json"), "-o", `docker://${registry.host}/faults/built:1`], { GANTRY_CACHE: cache });
    assert.equal(built.code, 0, built.stderr);
    const again = await gantry(["build", join(dir, "image.json"), "-o", `oci-archive:${join(dir, "built.tar")}`], { GANTRY_CACHE: cache });
    assert.equal(again.code, 0, again.stderr);
    const pushed = await gantry(["--json", "push", `oci-archive:${join(dir, "built.tar")}`, `docker://${registry.host}/faults/built-again:1`], { GANTRY_CACHE: cache });
    assert.equal(pushed.code, 0, pushed.stderr);
    const result = JSON.parse(pushed.stdout.toString()) as { digest: string; uploaded: number; mounted: number };
    assert.equal(result.uploaded, 0, "nothing uploaded");
    assert.ok(result.mounted >= 3, `base layer, new layer and config mounted: ${result.mounted}`);
    assert.equal(result.digest, (await skopeoInspect(`docker://${registry.host}/faults/built:1`)).Digest);
  });
});
