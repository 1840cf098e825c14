import { test } from "node:test";
import assert from "node:assert/strict";
import { matchesRepoTag } from "../../src/transports/image-name.js";

test("a name without a tag means latest, and docker.io/library/ is ignored", () => {
  assert.ok(matchesRepoTag(["docker.io/library/busybox:latest"], "busybox"));
  assert.ok(matchesRepoTag(["busybox:1.36"], "docker.io/library/busybox:1.36"));
  assert.ok(!matchesRepoTag(["busybox:1.36"], "busybox"));
});

test("a bare :TAG (fromImageTag alone) matches any name with exactly that tag", () => {
  assert.ok(matchesRepoTag(["a:1", "b:2"], ":2"));
  assert.ok(!matchesRepoTag(["a:12"], ":2"));
  assert.ok(!matchesRepoTag(["a:1"], ":latest"));
});
