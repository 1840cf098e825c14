/**
 * A file 20,000 directories deep, whited out from above in the next layer
 * (test/fixtures/hostile/deep.py, python3 tarfile). Removing it from the merged tree
 * overflowed the call stack ("Maximum call stack size exceeded", reported as a damaged
 * layer); export, diff and build now read the image, and what they make holds exactly the
 * two files that survive.
 */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runGantry } from "../helpers/gantry.js";
import { REPO_ROOT } from "../helpers/paths.js";
import { tmpDir } from "../helpers/tmp.js";
import { peerTest, requireTools, run } from "../helpers/tools.js";
import { fixture } from "../unit/formats-fixtures.js";

const DEEP_PY = join(REPO_ROOT, "test", "fixtures", "hostile", "deep.py");

async function ok(args: string[]): Promise<string> {
  const r = await runGantry(args, { timeoutMs: 120_000 });
  assert.equal(r.code, 0, `gantry ${args.join(" ")}: ${r.stderr}`);
  return r.stdout.toString("utf8");
}

peerTest("a path 20,000 directories deep, whited out above, is read by export, diff and build", async (t) => {
  requireTools("python3", "tar");
  const dir = await tmpDir(t);
  const image = join(dir, "deep.tar");
  await run("python3", [DEEP_PY, image, "20000"]);

  await ok(["export", image, "-o", join(dir, "rootfs.tar")]);
  const exported = (await run("tar", ["-tf", join(dir, "rootfs.tar")])).stdout.toString("utf8").split("\n").filter(Boolean);
  assert.deepEqual(exported.map((p) => p.replace(/^\.\//, "")).filter((p) => p !== "" && p !== ".").sort(), ["after.txt", "keep.txt"]);

  const diff = JSON.parse(await ok(["diff", fixture("skopeo-app.tar"), image, "--json"])) as { added: string[] };
  assert.deepEqual(diff.added, ["after.txt", "keep.txt"]);

  const spec = join(dir, "spec.json");
  await writeFile(spec, JSON.stringify({ name: "deep", tag: "1", fromImage: image }));
  await ok(["build", spec, "-o", join(dir, "built.tar"), "--quiet"]);
  await ok(["export", join(dir, "built.tar"), "-o", join(dir, "built-rootfs.tar")]);
  const built = (await run("tar", ["-tf", join(dir, "built-rootfs.tar")])).stdout.toString("utf8");
  assert.doesNotMatch(built, /leaf/);
});
