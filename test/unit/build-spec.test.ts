import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { validateSpec, loadSpecFile } from "../../src/builder/spec-load.js";
import { planBuild } from "../../src/builder/plan.js";
import { referenceRelativeTo as resolveBaseReference } from "../../src/transports/reference.js";
import { GantryError } from "../../src/model/errors.js";

function specError(input: unknown): string {
  try {
    validateSpec(input, "spec x.json");
  } catch (err) {
    assert.ok(err instanceof GantryError);
    assert.equal(err.code, "SPEC_INVALID");
    return err.message;
  }
  assert.fail("the spec was accepted");
}

test("an invalid field is named with its value and what is allowed", () => {
  const msg = specError({ name: "app", compressor: "lz4" });
  assert.match(msg, /"compressor"/);
  assert.match(msg, /"lz4"/);
  assert.match(msg, /"gzip"/);
});

test("a missing name is reported as required", () => {
  assert.match(specError({ tag: "1" }), /"name" is required/);
});

test("a wrong type deep inside config is named by its path", () => {
  assert.match(specError({ name: "app", config: { Env: ["A=1", 5] } }), /config\.Env\[1\]/);
});

test("unknown fields are refused, and the old nix name gets a hint", () => {
  assert.match(specError({ name: "app", contents: ["./root"] }), /unknown field "contents" \(use copyToRoot\)/);
  assert.match(specError({ name: "app", config: { cmd: ["x"] } }), /unknown field config "cmd"/);
});

test("an uppercase image name is refused", () => {
  assert.match(specError({ name: "MyApp" }), /"name" is "MyApp"/);
});

test("layers and a top-level copyToRoot cannot be combined", () => {
  assert.match(specError({ name: "a", copyToRoot: "./x", layers: [{ copyToRoot: "./y" }] }), /either "layers"/);
});

test("the plan resolves paths, times and defaults", () => {
  const spec = validateSpec({ name: "reg:5000/team/app", copyToRoot: ["./root", { from: "dist", to: "/app" }], perms: [{ path: "/app/*", mode: "0755" }] }, "s");
  const plan = planBuild(spec, "/specs", {});
  assert.equal(plan.created, "1970-01-01T00:00:01Z");
  assert.equal(plan.mtime, 1);
  assert.deepEqual(plan.layers[0]?.sources, [{ from: "/specs/root", to: "/" }, { from: "/specs/dist", to: "/app" }]);
  assert.equal(plan.layers[0]?.perms[0]?.mode, 0o755);
  assert.equal(plan.compression, "gzip");
  assert.equal(plan.uid, 0);
});

test("mtime comes from SOURCE_DATE_EPOCH when not given, and from the spec when given", () => {
  const spec = validateSpec({ name: "a", created: "2024-01-02T03:04:05.678Z" }, "s");
  assert.equal(planBuild(spec, "/", { SOURCE_DATE_EPOCH: "1700000000" }).mtime, 1700000000);
  assert.equal(planBuild(spec, "/", {}).mtime, Date.parse("2024-01-02T03:04:05Z") / 1000);
  assert.equal(planBuild(spec, "/", {}).created, "2024-01-02T03:04:05Z");
  assert.equal(planBuild(validateSpec({ name: "a", mtime: 42 }, "s"), "/", { SOURCE_DATE_EPOCH: "7" }).mtime, 42);
});

test("maxLayers makes the copyToRoot layer one to split by unit, a script a layer of its own, and the first hand layer split", () => {
  const plan = planBuild(validateSpec({ name: "a", copyToRoot: ["a", "b"], maxLayers: 3 }, "s"), "/s", {});
  assert.equal(plan.maxLayers, 3);
  assert.deepEqual(plan.layers.map((l) => [l.sources.map((s) => ("from" in s ? s.from : s)), l.splittable ?? false]), [[["/s/a", "/s/b"], true]]);
  const scripted = planBuild(validateSpec({ name: "a", copyToRoot: ["a"], runAsRoot: "true", maxLayers: 3 }, "s"), "/s", {});
  assert.deepEqual(scripted.layers.map((l) => [l.splittable ?? false, l.runAsRoot ?? null]), [[true, null], [false, "true"]]);
  const hand = planBuild(validateSpec({ name: "a", layers: [{ copyToRoot: ["deps"] }, { copyToRoot: ["src"] }], maxLayers: 6 }, "s"), "/s", {});
  assert.deepEqual(hand.layers.map((l) => l.splittable ?? false), [true, false]);
  assert.equal(planBuild(validateSpec({ name: "a", copyToRoot: ["a"] }, "s"), "/s", {}).layers[0]!.splittable, undefined, "no maxLayers: one layer");
  assert.match(specError({ name: "a", maxLayers: 128 }), /"maxLayers"/);
});

test("platforms are OS/ARCH[/VARIANT], once each, and not beside architecture", () => {
  const plan = planBuild(validateSpec({ name: "a", platforms: ["linux/amd64", "linux/arm64/v8"] }, "s"), "/s", {});
  assert.deepEqual(plan.platforms, [{ os: "linux", architecture: "amd64" }, { os: "linux", architecture: "arm64", variant: "v8" }]);
  assert.match(specError({ name: "a", platforms: ["amd64"] }), /"platforms\[0\]"/);
  assert.match(specError({ name: "a", platforms: ["linux/amd64", "linux/amd64"] }), /names linux\/amd64 twice/);
  assert.match(specError({ name: "a", platforms: ["linux/amd64"], architecture: "arm64" }), /either "platforms" or "architecture"/);
});

test("fromImageName/fromImageTag become one pick", () => {
  assert.equal(planBuild(validateSpec({ name: "a", fromImage: "b.tar", fromImageName: "busybox", fromImageTag: "1" }, "s"), "/s", {}).pick, "busybox:1");
  assert.equal(planBuild(validateSpec({ name: "a", fromImage: "b.tar", fromImageName: "busybox" }, "s"), "/s", {}).pick, "busybox");
});

test("base references get their path part resolved against the spec's directory", () => {
  assert.equal(resolveBaseReference("docker-archive:base.tar:busybox:1", "/s"), "docker-archive:/s/base.tar:busybox:1");
  assert.equal(resolveBaseReference("oci:/abs/layout:t", "/s"), "oci:/abs/layout:t");
  assert.equal(resolveBaseReference("docker://127.0.0.1:5000/x:1", "/s"), "docker://127.0.0.1:5000/x:1");
  assert.equal(resolveBaseReference("../base.tar", "/s/d"), "/s/base.tar");
  assert.equal(resolveBaseReference("dir:rel", "/s"), "dir:/s/rel");
  assert.equal(resolveBaseReference("docker-daemon:app:1", "/s"), "docker-daemon:app:1");
});

test("a TypeScript spec loads with no build step and may import gantry", async () => {
  const dir = await mkdtemp(join(tmpdir(), "gantry-spec-"));
  const file = join(dir, "image.ts");
  await writeFile(file, `import { defineImage } from "gantry";\nconst tag: string = "v" + (1 + 1);\nexport default defineImage({ name: "typed", tag });\n`);
  const value = await loadSpecFile(file);
  assert.deepEqual(validateSpec(value, "s"), { name: "typed", tag: "v2" });
});

test("a JSON spec that does not parse names the file", async () => {
  const dir = await mkdtemp(join(tmpdir(), "gantry-spec-"));
  const file = join(dir, "bad.json");
  await writeFile(file, "{ name: ");
  await assert.rejects(loadSpecFile(file), (e: GantryError) => e.code === "SPEC_INVALID" && e.message.includes("bad.json"));
});

test("compressionLevel is checked against the compressor's levels and reaches the plan", () => {
  assert.match(specError({ name: "app", compressionLevel: 0 }), /"compressionLevel" is 0, expected 1 to 9 for gzip/);
  assert.match(specError({ name: "app", compressor: "zstd", compressionLevel: 22 }), /expected 1 to 19 for zstd/);
  assert.match(specError({ name: "app", compressor: "none", compressionLevel: 3 }), /"none", which has no levels/);
  assert.match(specError({ name: "app", compressionLevel: 2.5 }), /"compressionLevel"/);
  assert.equal(planBuild(validateSpec({ name: "app", compressor: "zstd", compressionLevel: 9 }, "spec"), "/s", {}).level, 9);
  assert.equal(planBuild(validateSpec({ name: "app" }, "spec"), "/s", {}).level, undefined, "absent: the compressor's default");
});
