import { test } from "node:test";
import assert from "node:assert/strict";
import { compileGlob } from "../../src/layer/glob.js";
import { GantryError } from "../../src/model/errors.js";

function check(pattern: string, yes: string[], no: string[]): void {
  const match = compileGlob(pattern);
  for (const p of yes) assert.equal(match(p), true, `${pattern} should match ${p}`);
  for (const p of no) assert.equal(match(p), false, `${pattern} should not match ${p}`);
}

test("perms globs: *, ?, ** and literal characters", () => {
  check("/app/run.sh", ["app/run.sh"], ["app/runxsh", "app/run.sh/x", "xapp/run.sh"]);
  check("/app/*", ["app/a", "app/.hidden"], ["app", "app/a/b"]);
  check("/app/**", ["app/a", "app/a/b/c"], ["app", "application/x"]);
  check("**", ["a", "a/b/c"], []);
  check("**/*.so", ["libc.so", "usr/lib/libc.so"], ["usr/lib/libc.so.6"]);
  check("/usr/**/bin/*", ["usr/bin/env", "usr/local/bin/x"], ["usr/bin", "usr/local/bin/x/y"]);
  check("/etc/?ostname", ["etc/hostname"], ["etc/ostname", "etc/x/ostname"]);
  check("/a+b(c)[d]{e}$^|", ["a+b(c)[d]{e}$^|"], ["aab(c)[d]{e}$^|"]);
});

test("an empty perms path is a spec error", () => {
  assert.throws(() => compileGlob("/"), (err: unknown) => err instanceof GantryError && err.code === "SPEC_INVALID");
});
