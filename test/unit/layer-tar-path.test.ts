import { test } from "node:test";
import assert from "node:assert/strict";
import { ancestorsOf, cleanPath, comparePaths, isAtOrBelow, joinPath, parentPath } from "../../src/model/image-path.js";
import { GantryError } from "../../src/model/errors.js";

const unsafe = (err: unknown): boolean => err instanceof GantryError && err.code === "UNSAFE_PATH";

test("cleanPath gives one canonical spelling", () => {
  const cases: Array<[string, string]> = [
    ["./usr/bin/env", "usr/bin/env"],
    ["/usr/bin/env", "usr/bin/env"],
    ["usr//bin///env/", "usr/bin/env"],
    ["./usr/./bin/.", "usr/bin"],
    ["a/b/../c", "a/c"],
    ["a/..", ""],
    ["./", ""],
    ["/", ""],
    ["", ""],
    ["...", "..."],
    ["a/..b", "a/..b"],
  ];
  for (const [raw, clean] of cases) assert.equal(cleanPath(raw), clean, raw);
});

test("cleanPath refuses escapes and NUL", () => {
  for (const raw of ["..", "../etc", "/../etc", "a/../../etc", "./a/b/../../../x", "a\0b"]) {
    assert.throws(() => cleanPath(raw, "the entry"), unsafe, raw);
  }
  assert.throws(() => cleanPath("../x", "the entry"), /the entry "\.\.\/x"/);
});

test("path helpers", () => {
  assert.equal(parentPath("a/b/c"), "a/b");
  assert.equal(parentPath("a"), "");
  assert.equal(joinPath("", "a"), "a");
  assert.equal(joinPath("a", "b"), "a/b");
  assert.deepEqual(ancestorsOf("a/b/c"), ["a", "a/b"]);
  assert.deepEqual(ancestorsOf("a"), []);
  assert.equal(isAtOrBelow("a/b", "a"), true);
  assert.equal(isAtOrBelow("ab", "a"), false);
  assert.equal(isAtOrBelow("x", ""), true);
});

test("comparePaths is UTF-8 byte order, parents before children", () => {
  const names = ["a", "a/b", "a-b", "a.b", "b", "é", "\u{1F600}", "\uFF21", "\uE000x", "a b", "A", "a/b/c", "~"];
  const byBytes = [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
  assert.deepEqual([...names].sort(comparePaths), byBytes);
  // JavaScript's default order disagrees on astral vs U+E000..U+FFFF: the case this function exists for
  assert.notDeepEqual([...names].sort(), byBytes);
  assert.ok(comparePaths("a", "a/b") < 0);
  assert.equal(comparePaths("x", "x"), 0);
});
