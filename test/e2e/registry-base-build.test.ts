/**
 * A `docker://` base in a build spec (issue: registry bases in specs): pinned by digest it is
 * pulled into the cache once, so the same build works again with the registry stopped and
 * gives the same bytes; by tag alone it builds with a warning that it is not pinned.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pushImage } from "../../src/ops/copy.js";
import { runGantry } from "../helpers/gantry.js";
import { startRegistry } from "../helpers/registry.js";
import { tmpDir } from "../helpers/tmp.js";
import { have } from "../helpers/tools.js";

test("a pinned registry base builds again with the registry stopped, to the same bytes", { skip: !have("docker-registry") && "docker-registry is not installed" }, async (t) => {
  const dir = await tmpDir(t);
  const cache = join(dir, "cache");
  await mkdir(join(dir, "base-root/etc"), { recursive: true });
  await writeFile(join(dir, "base-root/etc/os-release"), "ID=gantry-test\n");
  await writeFile(join(dir, "base.json"), JSON.stringify({ name: "base", tag: "1", copyToRoot: ["./base-root"] }));
  const built = await runGantry(["build", join(dir, "base.json"), "-o", join(dir, "base.tar"), "--quiet"]);
  assert.equal(built.code, 0, built.stderr);

  const registry = await startRegistry();
  let stopped = false;
  t.after(async () => { if (!stopped) await registry.stop(); });
  const pushed = await pushImage({ src: join(dir, "base.tar"), ref: `docker://${registry.host}/team/base:1` });

  await mkdir(join(dir, "app/srv"), { recursive: true });
  await writeFile(join(dir, "app/srv/app.txt"), "app\n");
  const pinned = `docker://${registry.host}/team/base@${pushed.digest}`;
  await writeFile(join(dir, "pinned.json"), JSON.stringify({ name: "app", tag: "1", fromImage: pinned, copyToRoot: ["./app"] }));
  await writeFile(join(dir, "unpinned.json"), JSON.stringify({ name: "app", tag: "1", fromImage: `docker://${registry.host}/team/base:1`, copyToRoot: ["./app"] }));
  const env = { GANTRY_CACHE: cache };

  const unpinned = await runGantry(["build", join(dir, "unpinned.json"), "-o", join(dir, "unpinned.tar")], { env });
  assert.equal(unpinned.code, 0, unpinned.stderr);
  assert.match(unpinned.stderr, /not pinned by digest/);

  const first = await runGantry(["build", join(dir, "pinned.json"), "-o", join(dir, "first.tar"), "--quiet"], { env });
  assert.equal(first.code, 0, first.stderr);
  await registry.stop();
  stopped = true;
  const again = await runGantry(["build", join(dir, "pinned.json"), "-o", join(dir, "again.tar"), "--quiet"], { env });
  assert.equal(again.code, 0, again.stderr);
  assert.ok((await readFile(join(dir, "first.tar"))).equals(await readFile(join(dir, "again.tar"))), "the same bytes without the registry");

  // Without the cache the registry is needed, and its absence is one clear line.
  const noCache = await runGantry(["build", join(dir, "pinned.json"), "-o", join(dir, "nocache.tar"), "--no-cache", "--quiet"], { env });
  assert.equal(noCache.code, 1);
  assert.match(noCache.stderr, /^gantry: cannot reach 127\.0\.0\.1:\d+.*\n$/);
});
