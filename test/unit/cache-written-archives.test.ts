/**
 * Written-archive records (cache/written-archives.ts): a rebuild that would write the same
 * archive to a file still holding it leaves the file alone. It must never leave a file that
 * was changed, replaced or removed, nor one asked to hold another image; a record made
 * within the clock's tick is trusted only once the file's bytes are hashed.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { appendFile, lstat, mkdir, readFile, rename, rm, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { buildImage, type BuildOptions, type BuildResult } from "../../src/builder/build.js";
import type { ImageSpecInput } from "../../src/builder/spec-schema.js";
import { WrittenArchivesDir } from "../../src/cache/written-archives.js";
import { forgetMergedTrees } from "../../src/layer/merged-tree.js";
import { sha256 } from "../../src/model/digest.js";
import { tmpDir } from "../helpers/tmp.js";

const LEFT = /already holds this archive; left as it is/;

interface Built extends BuildResult { messages: string[] }

async function build(dir: string, out: string, extra: Partial<BuildOptions> = {}, spec: Partial<ImageSpecInput> = {}): Promise<Built> {
  const messages: string[] = [];
  forgetMergedTrees();
  const result = await buildImage({
    spec: { name: "kept", tag: "1", created: "2024-01-02T03:04:05Z", copyToRoot: "./root", ...spec } as ImageSpecInput,
    specDir: dir, output: join(dir, out), cacheDir: join(dir, "cache"), env: {},
    onProgress: (e) => messages.push(e.message),
    ...extra,
  });
  return { ...result, messages };
}

const left = (r: Built): boolean => r.messages.some((m) => LEFT.test(m));

async function identityOf(path: string): Promise<string> {
  const st = await lstat(path, { bigint: true });
  return `${st.ino} ${st.mtimeNs} ${st.ctimeNs}`;
}

async function setUp(t: TestContext): Promise<string> {
  const dir = await tmpDir(t);
  await mkdir(join(dir, "root/app"), { recursive: true });
  await writeFile(join(dir, "root/app/a.txt"), "alpha\n".repeat(1000));
  return dir;
}

test("a rebuild of the same image leaves the archive it wrote untouched, for docker and OCI archives", async (t) => {
  const dir = await setUp(t);
  for (const out of ["image.tar", "oci-archive:image.oci.tar"]) {
    const path = join(dir, out.replace("oci-archive:", ""));
    const output = out.startsWith("oci-archive:") ? `oci-archive:${path}` : path;
    const first = await build(dir, "unused", { output });
    assert.equal(left(first), false);
    const bytes = await readFile(path);
    const before = await identityOf(path);
    // The first check is within the tick of the write (its bytes are hashed), the next after it.
    for (const round of [1, 2]) {
      const again = await build(dir, "unused", { output });
      assert.ok(left(again), `${out}, rebuild ${round}: ${again.messages.join(" | ")}`);
      assert.equal(again.manifestDigest, first.manifestDigest);
      assert.equal(await identityOf(path), before, `${out}, rebuild ${round}: the file was not written`);
    }
    assert.deepEqual(await readFile(path), bytes);
  }
});

test("an archive changed, cut, replaced or removed since, or asked to hold another image, is written again", async (t) => {
  const dir = await setUp(t);
  const path = join(dir, "image.tar");
  const honest = await readFile(join(dir, (await build(dir, "honest.tar", { noCache: true }), "honest.tar")));
  const changes: Array<[string, () => Promise<void>]> = [
    ["appended to", () => appendFile(path, "x")],
    ["cut short", () => truncate(path, 1024)],
    ["replaced by another file", async () => { await writeFile(join(dir, "other"), honest); await rename(join(dir, "other"), path); }],
    ["removed", () => rm(path)],
  ];
  await build(dir, "image.tar");
  for (const [what, change] of changes) {
    await change();
    const r = await build(dir, "image.tar");
    assert.equal(left(r), false, `${what}: written again`);
    assert.deepEqual(await readFile(path), honest, `${what}: the archive a build without cache writes`);
  }
  const other = await build(dir, "image.tar", {}, { tag: "2" });
  assert.equal(left(other), false, "another image is written");
  assert.notDeepEqual(await readFile(path), honest);
  const noCache = await build(dir, "image.tar", { noCache: true }, { tag: "2" });
  assert.equal(left(noCache), false, "--no-cache always writes");
});

test("a record made within the file's tick is checked by content; one made after it, by lstat alone", async (t) => {
  const dir = await tmpDir(t);
  const path = join(dir, "a.tar");
  const bytes = Buffer.from("the archive's bytes\n");
  await writeFile(path, bytes);
  const records = new WrittenArchivesDir(join(dir, "outputs"));
  const identity = sha256("an archive");
  const wrong = sha256("other bytes");
  // Recorded at once: within the racy window of the file's ctime.
  await records.remember(path, identity, { digest: wrong, size: bytes.length });
  assert.equal(await records.unchanged(path, identity), undefined, "a racy record whose bytes do not hash to the record is a miss");
  await records.remember(path, identity, { digest: sha256(bytes), size: bytes.length });
  assert.equal(await records.unchanged(path, sha256("another archive")), undefined, "another identity is a miss");
  assert.equal(await records.unchanged(path, identity), bytes.length, "a racy record whose bytes hash right is a hit");
  // Recorded well after the file was written: the lstat is trusted, the bytes are not read.
  await new Promise((resolve) => setTimeout(resolve, 250));
  await records.remember(path, identity, { digest: wrong, size: bytes.length });
  assert.equal(await records.unchanged(path, identity), bytes.length, "out of the window, lstat decides");
  // Same size, and the mtime put back: only the ctime tells.
  execFileSync("touch", ["-r", path, join(dir, "times")]);
  await writeFile(path, "THE ARCHIVE'S BYTES\n");
  execFileSync("touch", ["-r", join(dir, "times"), path]);
  assert.equal(await records.unchanged(path, identity), undefined, "a write moves the ctime on: a miss");
});
