/**
 * extraCommands: run in the new layer's staging directory (a copy of the copyToRoot
 * content, not chrooted, with gantry's environment) before packing. What it creates is
 * in the layer, modes such as 1777 included; the source directory is never touched;
 * a failing script fails the build with one line. Judged by GNU tar's listing.
 */
import assert from "node:assert/strict";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { archiveManifest, tarMember } from "../helpers/archive.js";
import { runGantry } from "../helpers/gantry.js";
import { newLayerEntries } from "../helpers/image-checks.js";
import { tmpDir } from "../helpers/tmp.js";
import { peerTest, requireTools, run } from "../helpers/tools.js";

const SCRIPT = [
  "mkdir tmp && chmod 1777 tmp",
  "test -f app/hello.txt",
  "ln -s app/hello.txt hello-link",
  "chmod 0750 app",
  "echo \"$GANTRY_TEST_MARK\" > mark",
].join(" && ");

peerTest("what extraCommands makes in the staging directory is in the layer, mode 1777 included", async (t) => {
  requireTools("tar");
  const dir = await tmpDir(t);
  await mkdir(join(dir, "root", "app"), { recursive: true });
  await writeFile(join(dir, "root", "app", "hello.txt"), "hello\n");
  await writeFile(join(dir, "spec.json"), JSON.stringify({
    name: "gantry-test/extra", tag: "1", copyToRoot: "root", compressor: "none", extraCommands: SCRIPT,
  }));
  const out = join(dir, "out.tar");
  const r = await runGantry(["build", join(dir, "spec.json"), "-o", out], { env: { GANTRY_TEST_MARK: "from the environment" } });
  assert.equal(r.code, 0, r.stderr);

  const entries = new Map((await newLayerEntries(out, dir)).map((e) => [e.path, e]));
  assert.equal(entries.get("tmp")?.type, "d");
  assert.equal(entries.get("tmp")?.mode, 0o1777, "the sticky, world-writable tmp");
  assert.equal(entries.get("hello-link")?.linkTarget, "app/hello.txt");
  assert.equal(entries.get("app")?.mode, 0o750);
  assert.equal(entries.get("app/hello.txt")?.uid, 0);
  assert.ok(entries.has("mark"));

  const [manifest] = await archiveManifest(out);
  const layer = join(dir, "layer.tar");
  await writeFile(layer, await tarMember(out, manifest?.Layers[0] ?? ""));
  assert.equal((await run("tar", ["-xOf", layer, "mark"])).stdout.toString(), "from the environment\n", "the script inherits gantry's environment");
  assert.deepEqual(await readdir(join(dir, "root")), ["app"], "the source directory is not changed");
});

peerTest("a failing extraCommands script fails the build with its status and output", async (t) => {
  const dir = await tmpDir(t);
  await mkdir(join(dir, "root"));
  await writeFile(join(dir, "spec.json"), JSON.stringify({
    name: "gantry-test/extra", tag: "1", copyToRoot: "root", extraCommands: "echo no such thing; false",
  }));
  const r = await runGantry(["build", join(dir, "spec.json"), "-o", join(dir, "out.tar")]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^gantry: the extraCommands script exited with status 1; its last output: no such thing$/m);
  assert.deepEqual((await readdir(dir)).sort(), ["root", "spec.json"]);
});
