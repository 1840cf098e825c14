import { test } from "node:test";
import assert from "node:assert/strict";
import { imageConfig, mergeEnv } from "../../src/builder/config.js";
import { planBuild } from "../../src/builder/plan.js";
import { validateSpec } from "../../src/builder/spec-load.js";
import type { ImageConfigJson } from "../../src/model/oci.js";

const base: ImageConfigJson = {
  architecture: "arm64",
  variant: "v8",
  os: "linux",
  created: "2020-01-01T00:00:00Z",
  config: { Env: ["PATH=/usr/bin:/bin", "LANG=C"], Cmd: ["/bin/sh"], WorkingDir: "/srv" },
  rootfs: { type: "layers", diff_ids: [`sha256:${"a".repeat(64)}`] },
  history: [{ created: "2020-01-01T00:00:00Z", created_by: "base" }],
  custom_field: "kept",
};

test("Env is merged by name, the spec winning", () => {
  assert.deepEqual(mergeEnv(["PATH=/bin", "A=1"], ["A=2", "B=3"]), ["PATH=/bin", "A=2", "B=3"]);
  assert.deepEqual(mergeEnv(undefined, ["A=1"]), ["A=1"]);
});

test("the base's config is kept, spec fields replace, Env merges", () => {
  const plan = planBuild(validateSpec({ name: "a", config: { Cmd: ["/app"], Env: ["LANG=C.UTF-8", "FOO=bar"] } }, "s"), "/", {});
  const diffId = `sha256:${"b".repeat(64)}` as const;
  const c = imageConfig(base, plan, [{ diffId, createdBy: "x" }]);
  assert.deepEqual(c.config?.Env, ["PATH=/usr/bin:/bin", "LANG=C.UTF-8", "FOO=bar"]);
  assert.deepEqual(c.config?.Cmd, ["/app"]);
  assert.equal(c.config?.WorkingDir, "/srv");
  assert.equal(c["custom_field"], "kept");
  assert.deepEqual(c.rootfs.diff_ids, [base.rootfs.diff_ids[0], diffId]);
  assert.equal(c.history?.length, 2);
  assert.equal(c.history?.[0]?.created_by, "base");
  assert.equal(c.created, "1970-01-01T00:00:01Z");
  assert.equal(c.architecture, "arm64");
  assert.equal(c.variant, "v8");
});

test("a base without history gets one placeholder per base layer", () => {
  const plan = planBuild(validateSpec({ name: "a" }, "s"), "/", {});
  const { history: _h, ...noHistory } = base;
  const c = imageConfig(noHistory as ImageConfigJson, plan, [{ diffId: `sha256:${"c".repeat(64)}`, createdBy: "x" }]);
  assert.equal(c.history?.filter((h) => !h.empty_layer).length, c.rootfs.diff_ids.length);
});

test("the spec's architecture replaces the base's and drops its variant", () => {
  const plan = planBuild(validateSpec({ name: "a", architecture: "amd64" }, "s"), "/", {});
  const c = imageConfig(base, plan, []);
  assert.equal(c.architecture, "amd64");
  assert.equal(c.variant, undefined);
});
