import { test } from "node:test";
import assert from "node:assert/strict";
import {
  OPAQUE_MARKER, WHITEOUT_PREFIX, classifyEntry, isWhiteoutName, opaqueMarkerPathFor, whiteoutPathFor,
} from "../../src/whiteout/index.js";
import { GantryError } from "../../src/model/errors.js";

const unsafe = (err: unknown): boolean => err instanceof GantryError && err.code === "UNSAFE_PATH";

test("the constants are the OCI / Docker spellings", () => {
  assert.equal(WHITEOUT_PREFIX, ".wh.");
  assert.equal(OPAQUE_MARKER, ".wh..wh..opq");
});

test("plain entries are cleaned and kept", () => {
  assert.deepEqual(classifyEntry("./usr//bin/./env"), { kind: "plain", path: "usr/bin/env" });
  assert.deepEqual(classifyEntry("/etc/"), { kind: "plain", path: "etc" });
  assert.deepEqual(classifyEntry("./"), { kind: "plain", path: "" });
  // ".wh" without the trailing dot is an ordinary name
  assert.deepEqual(classifyEntry("a/.whatever"), { kind: "plain", path: "a/.whatever" });
});

test("a whiteout names the path it deletes", () => {
  assert.deepEqual(classifyEntry("./etc/.wh.passwd"), { kind: "whiteout", deleted: "etc/passwd" });
  assert.deepEqual(classifyEntry(".wh.opt"), { kind: "whiteout", deleted: "opt" });
  assert.deepEqual(classifyEntry("a/b/.wh..hidden"), { kind: "whiteout", deleted: "a/b/.hidden" });
});

test("the opaque marker names its directory", () => {
  assert.deepEqual(classifyEntry("var/cache/.wh..wh..opq"), { kind: "opaque", dir: "var/cache" });
  assert.deepEqual(classifyEntry("./.wh..wh..opq"), { kind: "opaque", dir: "" });
});

test("AUFS bookkeeping names are reported as meta, not as deletions", () => {
  assert.equal(classifyEntry(".wh..wh.aufs").kind, "meta");
  assert.equal(classifyEntry("x/.wh..wh.plnk").kind, "meta");
});

test("whiteouts of '.', '..' or nothing, and escaping paths, are refused", () => {
  assert.throws(() => classifyEntry("etc/.wh.."), unsafe);
  assert.throws(() => classifyEntry("etc/.wh..."), unsafe);
  assert.throws(() => classifyEntry("etc/.wh."), unsafe);
  assert.throws(() => classifyEntry("../.wh.etc"), unsafe);
  assert.throws(() => classifyEntry("a/../../.wh.x"), unsafe);
  assert.throws(() => classifyEntry("a/\0b"), unsafe);
});

test("the emit side round-trips through classifyEntry", () => {
  for (const deleted of ["etc/passwd", "opt", "a/b/c d", "x/.hidden"]) {
    const path = whiteoutPathFor(deleted);
    assert.ok(path.split("/").pop()?.startsWith(WHITEOUT_PREFIX));
    assert.deepEqual(classifyEntry(path), { kind: "whiteout", deleted });
  }
  assert.equal(whiteoutPathFor("usr/lib/x"), "usr/lib/.wh.x");
  for (const dir of ["", "var/cache"]) {
    assert.deepEqual(classifyEntry(opaqueMarkerPathFor(dir)), { kind: "opaque", dir });
  }
  assert.equal(opaqueMarkerPathFor("var"), "var/.wh..wh..opq");
  assert.throws(() => whiteoutPathFor(""), unsafe);
});

test("isWhiteoutName flags reserved source names only", () => {
  assert.equal(isWhiteoutName(".wh.foo"), true);
  assert.equal(isWhiteoutName(".wh..wh..opq"), true);
  assert.equal(isWhiteoutName(".whx"), false);
  assert.equal(isWhiteoutName("a.wh.b"), false);
});
