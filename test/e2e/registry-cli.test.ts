import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { copyImage, pullImage, pushImage } from "../../src/ops/copy.js";
import { CLI_PATH, FIXTURE_BASES_DIR } from "../helpers/paths.js";
import {
  freePort, skopeo, skopeoInspect, startCountingProxy, startRegistry, type CountingProxy, type RunningRegistry,
} from "../helpers/registry.js";

const execFileP = promisify(execFile);

/**
 * The library entry points and the `gantry pull|push|copy` commands against a real registry,
 * with a docker-archive made by umoci + skopeo as the source; skopeo reads back what we wrote.
 */
describe("gantry pull, push, copy", () => {
  let registry: RunningRegistry;
  let proxy: CountingProxy;
  let work: string;
  let archive: string;

  before(async () => {
    registry = await startRegistry();
    proxy = await startCountingProxy(registry.host);
    work = await mkdtemp(join(tmpdir(), "gantry-registry-cli-"));
    await execFileP("bash", [join(FIXTURE_BASES_DIR, "umoci-busybox.sh"), join(work, "fx")]);
    archive = join(work, "fx", "busybox.tar");
  });
  after(async () => {
    await proxy?.stop();
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function gantry(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await execFileP(process.execPath, [CLI_PATH, ...args], {
        env: { ...process.env, GANTRY_CACHE: join(work, "cli-cache"), HOME: work },
      });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  }

  test("push an archive, pull it to a docker-archive skopeo reads, copy it within the registry", async () => {
    const ref = `docker://${registry.host}/cli/busybox:1`;
    const pushed = await gantry(["--json", "push", archive, ref]);
    assert.equal(pushed.code, 0, pushed.stderr);
    const pushResult = JSON.parse(pushed.stdout) as { digest: string; uploaded: number };
    assert.equal((await skopeoInspect(ref)).Digest, pushResult.digest);
    assert.equal(pushResult.uploaded, 2);

    const out = join(work, "pulled.tar");
    const pulled = await gantry(["--json", "pull", ref, "-o", out]);
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.equal((JSON.parse(pulled.stdout) as { manifestDigest: string }).manifestDigest, pushResult.digest);
    const fromArchive = JSON.parse(await skopeo(["inspect", "--config", `docker-archive:${out}`])) as { rootfs: { diff_ids: string[] } };
    const fromSource = JSON.parse(await skopeo(["inspect", "--config", `docker-archive:${archive}`])) as { rootfs: { diff_ids: string[] } };
    assert.deepEqual(fromArchive.rootfs.diff_ids, fromSource.rootfs.diff_ids);

    const copied = await gantry(["copy", ref, `docker://${registry.host}/cli/copied:1`]);
    assert.equal(copied.code, 0, copied.stderr);
    assert.match(copied.stderr, /mounted/);
    assert.equal((await skopeoInspect(`docker://${registry.host}/cli/copied:1`)).Digest, pushResult.digest, "a registry copy keeps the digest");
  });

  test("errors: one gantry: line, exit 1; a bad --format is a usage error, exit 2", async () => {
    const missing = await gantry(["pull", `docker://${registry.host}/cli/missing:1`, "-o", join(work, "never.tar")]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, new RegExp(`^gantry: ${registry.host.replace(/\./g, "\\.")}/cli/missing:1 was not found`, "m"));
    assert.equal(missing.stderr.trim().split("\n").filter((l) => l.startsWith("gantry:")).length, 1);

    const port = await freePort();
    const down = await gantry(["--quiet", "push", archive, `docker://127.0.0.1:${port}/cli/x:1`]);
    assert.equal(down.code, 1);
    assert.equal(down.stderr.trim(), `gantry: cannot reach 127.0.0.1:${port}: the connection to http://127.0.0.1:${port} was refused; check that the registry is running and the address is right`);

    const bad = await gantry(["push", "--format", "docker", archive, `docker://${registry.host}/cli/x:1`]);
    assert.equal(bad.code, 2);
  });

  test("pullImage goes through the cache: a pinned pull fetches no blob the second time", async () => {
    const ref = `${proxy.host}/api/busybox:1`;
    const pushed = await pushImage({ src: archive, ref });
    const pinned = `docker://${proxy.host}/api/busybox@${pushed.digest}`;
    const cacheDir = join(work, "api-cache");
    const first = await pullImage({ ref: pinned, dest: join(work, "api-1.tar"), cacheDir });
    assert.equal(first.manifestDigest, pushed.digest);
    proxy.reset();
    await pullImage({ ref: pinned, dest: join(work, "api-2.tar"), cacheDir });
    assert.deepEqual(proxy.requests, [], "nothing was asked of the registry");

    // copyImage from an OCI layout (umoci's) to the registry, then back to an OCI layout.
    const copy = await copyImage({ src: `oci:${join(work, "fx", "oci")}:1`, dest: `docker://${registry.host}/api/from-oci:1` });
    assert.equal((await skopeoInspect(`docker://${registry.host}/api/from-oci:1`)).Digest, copy.manifestDigest);
    const back = await copyImage({ src: `docker://${registry.host}/api/from-oci:1`, dest: `oci:${join(work, "back")}:1` });
    assert.equal(back.configDigest, copy.configDigest);
    await skopeo(["inspect", `oci:${join(work, "back")}:1`]);
  });
});
