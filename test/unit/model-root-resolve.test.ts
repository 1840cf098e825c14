import { test } from "node:test";
import assert from "node:assert/strict";
import { UnsafePathError } from "../../src/model/errors.js";
import { cleanPath } from "../../src/model/image-path.js";
import { MAX_LINK_HOPS, resolveLinks, type FollowRules, type RootEntry, type RootView } from "../../src/model/root-resolve.js";

/** A root described in shorthand: "/" ends a directory, "-> t" a symlink, "=> t" a hard link, anything else a file. */
function root(spec: readonly string[]): RootView & { asked: string[] } {
  const entries = new Map<string, RootEntry>();
  for (const line of spec) {
    const [path, arrow, target] = line.split(" ");
    if (path === undefined) continue;
    if (arrow === "->") entries.set(path, { kind: "symlink", target: target ?? "" });
    else if (arrow === "=>") entries.set(path, { kind: "hardlink", target: target ?? "" });
    else if (path.endsWith("/")) entries.set(path.slice(0, -1), { kind: "dir" });
    else entries.set(path, { kind: "other" });
  }
  const asked: string[] = [];
  return {
    name: "the test root",
    asked,
    lookup(path: string) {
      asked.push(path);
      return entries.get(path);
    },
  };
}

const CHROOT_DIRS: FollowRules = { followLast: false, follow: "dirs", confine: "clamp" };
const CHROOT_ALL: FollowRules = { followLast: true, follow: "all", confine: "clamp" };
const ARCHIVE: FollowRules = { followLast: true, follow: "all", confine: "refuse" };

/** An UnsafePathError whose one sentence names the path asked for (and `mention`, when given). */
function unsafe(asked: string, mention?: string): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof UnsafePathError, `not an UnsafePathError: ${String(err)}`);
    assert.equal(err.code, "UNSAFE_PATH");
    assert.ok(err.message.includes(JSON.stringify(asked)), `"${err.message}" does not name ${asked}`);
    if (mention !== undefined) assert.ok(err.message.includes(mention), `"${err.message}" does not mention ${mention}`);
    assert.ok(err.message.includes("the test root"), `"${err.message}" does not name the root`);
    return true;
  };
}

const USR = ["usr/", "usr/lib/", "usr/bin/", "usr/bin/busybox"];

test("as in a chroot, '..' at the root stays there and an absolute target starts at the root", () => {
  const view = root([...USR,
    "lib -> /usr/lib",
    "usr/lib64 -> ../../../../usr/lib",
    "etc/",
    "etc/up -> ../../..",
    "etc/top -> /",
  ]);
  for (const rules of [CHROOT_DIRS, CHROOT_ALL]) {
    assert.equal(resolveLinks(view, "lib/x", rules), "usr/lib/x", "absolute target");
    assert.equal(resolveLinks(view, "usr/lib64/x", rules), "usr/lib/x", "'..' above the root in a target");
    assert.equal(resolveLinks(view, "../../usr/lib/x", rules), "usr/lib/x", "'..' above the root in the path asked");
    assert.equal(resolveLinks(view, "etc/up/usr/x", rules), "usr/x", "a link to above the root is the root");
    assert.equal(resolveLinks(view, "etc/top/etc/x", rules), "etc/x", "a link to / is the root");
    assert.equal(resolveLinks(view, "/usr/lib/x", rules), "usr/lib/x", "a leading / is the root");
    assert.equal(resolveLinks(view, "usr/./lib//x", rules), "usr/lib/x", "'.' and empty components");
  }
});

test("links are followed only to directories under 'dirs', to anything under 'all'", () => {
  const view = root([...USR,
    "bin/",
    "bin/sh -> busybox",
    "bin/busybox -> ../usr/bin/busybox",
    "etc/",
    "etc/file",
    "etc/to-file -> file",
    "etc/dangling -> nowhere/at/all",
    "etc/to-dir -> ../usr",
    "etc/to-link-to-dir -> to-dir",
  ]);
  const dirs = { ...CHROOT_DIRS, followLast: true };
  assert.equal(resolveLinks(view, "bin/sh", dirs), "bin/sh", "a chain ending at a file stays as written");
  assert.equal(resolveLinks(view, "etc/to-file/x", dirs), "etc/to-file/x");
  assert.equal(resolveLinks(view, "etc/dangling/x", dirs), "etc/dangling/x", "a dangling link stays as written");
  assert.equal(resolveLinks(view, "etc/to-dir/lib", dirs), "usr/lib");
  assert.equal(resolveLinks(view, "etc/to-link-to-dir/bin/x", dirs), "usr/bin/x", "a link to a link to a directory");
  assert.equal(resolveLinks(view, "etc/to-file/..", dirs), "etc", "'..' after a link not followed leaves the link");

  assert.equal(resolveLinks(view, "bin/sh", CHROOT_ALL), "usr/bin/busybox", "links to files are followed");
  assert.equal(resolveLinks(view, "etc/to-file", CHROOT_ALL), "etc/file");
  assert.equal(resolveLinks(view, "etc/dangling", CHROOT_ALL), "etc/nowhere/at/all", "a dangling link resolves to what it names");
  assert.equal(resolveLinks(view, "etc/to-link-to-dir/bin/x", CHROOT_ALL), "usr/bin/x");
});

test("a hard link names a path from the root, a symlink one from its own directory", () => {
  const view = root([
    "b/",
    "b/file",
    "d/",
    "d/b/",
    "d/b/file",
    "d/hard => b/file",
    "d/soft -> b/file",
    "d/hard-up => d/../b/file",
    "d/hard-chain => d/soft",
    "d/empty -> ",
  ]);
  for (const rules of [CHROOT_ALL, ARCHIVE]) {
    assert.equal(resolveLinks(view, "d/hard", rules), "b/file");
    assert.equal(resolveLinks(view, "d/soft", rules), "d/b/file");
    assert.equal(resolveLinks(view, "d/hard-up", rules), "b/file");
    assert.equal(resolveLinks(view, "d/hard-chain", rules), "d/b/file", "a hard link to a symlink follows it");
    assert.equal(resolveLinks(view, "d/empty", rules), "d/empty", "an empty target leads nowhere and is not followed");
  }
  assert.equal(resolveLinks(view, "d/hard", { ...CHROOT_DIRS, followLast: true }), "d/hard", "a hard link to a file is not a way to a directory");
});

test("an archive refuses links that climb above its root or are absolute, naming the path asked", () => {
  const view = root([
    "b/",
    "b/file",
    "a/",
    "a/layer.tar -> ../b/file",
    "a/escape -> ../../etc/passwd",
    "absolute -> /b/file",
    "hard-absolute => /b/file",
    "hard-escape => ../b/file",
    "via -> a/escape",
  ]);
  assert.equal(resolveLinks(view, "a/layer.tar", ARCHIVE), "b/file", "a '..' that stays inside is fine");
  assert.throws(() => resolveLinks(view, "a/escape", ARCHIVE), unsafe("a/escape", "../../etc/passwd"));
  assert.throws(() => resolveLinks(view, "via", ARCHIVE), unsafe("via", "a/escape"), "names the link that escapes");
  assert.throws(() => resolveLinks(view, "absolute", ARCHIVE), unsafe("absolute", "/b/file"));
  assert.throws(() => resolveLinks(view, "hard-absolute", ARCHIVE), unsafe("hard-absolute"));
  assert.throws(() => resolveLinks(view, "hard-escape", ARCHIVE), unsafe("hard-escape"));
  assert.throws(() => resolveLinks(view, "../b/file", ARCHIVE), unsafe("../b/file"), "the path asked may not climb either");
  // The same links, in a chroot, are clamped instead.
  assert.equal(resolveLinks(view, "a/escape", CHROOT_ALL), "etc/passwd");
  assert.equal(resolveLinks(view, "absolute", CHROOT_ALL), "b/file");
  assert.equal(resolveLinks(view, "hard-escape", CHROOT_ALL), "b/file");
});

test(`more than ${MAX_LINK_HOPS} links in one lookup is an UnsafePathError naming the path`, () => {
  assert.equal(MAX_LINK_HOPS, 40, "Linux's MAXSYMLINKS");
  const chain = (links: number): string[] => [
    "end/",
    ...Array.from({ length: links }, (_, i) => `l${i} -> ${i === links - 1 ? "end" : `l${i + 1}`}`),
  ];
  const rulesets: FollowRules[] = [CHROOT_DIRS, { ...CHROOT_DIRS, followLast: true }, CHROOT_ALL, ARCHIVE];
  for (const rules of rulesets) {
    assert.equal(resolveLinks(root(chain(MAX_LINK_HOPS)), "l0/x", rules), "end/x", `${MAX_LINK_HOPS} links are allowed`);
    assert.throws(() => resolveLinks(root(chain(MAX_LINK_HOPS + 1)), "l0/x", rules), unsafe("l0/x", "loop"));
    assert.throws(() => resolveLinks(root(["loop1 -> loop2", "loop2 -> loop1"]), "loop1/x", rules), unsafe("loop1/x"));
    assert.throws(() => resolveLinks(root(["self -> ./self"]), "self/x", rules), unsafe("self/x"));
  }
  // The budget is for the whole lookup, not for each component: 2 × 21 links are too many.
  const two = root(["d/", ...Array.from({ length: 21 }, (_, i) => `a${i} -> ${i === 20 ? "d" : `a${i + 1}`}`), ...Array.from({ length: 21 }, (_, i) => `d/b${i} -> ${i === 20 ? "." : `b${i + 1}`}`)]);
  assert.throws(() => resolveLinks(two, "a0/b0/x", CHROOT_ALL), unsafe("a0/b0/x"));
});

test("followLast decides whether the last component is followed; the ones before it always are", () => {
  const view = root([...USR, "lib -> usr/lib", "bin -> usr/bin", "usr/bin/sh -> busybox"]);
  const off: FollowRules = { ...CHROOT_DIRS, followLast: false };
  const on: FollowRules = { ...CHROOT_DIRS, followLast: true };
  assert.equal(resolveLinks(view, "lib", off), "lib", "the name itself");
  assert.equal(resolveLinks(view, "lib", on), "usr/lib");
  assert.equal(resolveLinks(view, "lib/x", off), "usr/lib/x", "parents are followed");
  assert.equal(resolveLinks(view, "bin/sh", { ...CHROOT_ALL, followLast: false }), "usr/bin/sh");
  assert.equal(resolveLinks(view, "bin/sh", CHROOT_ALL), "usr/bin/busybox");
  assert.equal(resolveLinks(view, "lib/", off), "usr/lib", "a trailing slash follows the link, as on Linux");
  assert.equal(resolveLinks(view, "lib/.", off), "usr/lib", "so does a trailing '.'");
  assert.equal(resolveLinks(view, "lib/..", off), "usr", "and '..' leaves where the link led");
  assert.equal(resolveLinks(view, "", off), "", "the root is the root");
});

test("the view is asked only for canonical paths below the root", () => {
  const view = root([...USR, "lib -> /usr/./lib/", "up -> ../../usr//bin/.."]);
  for (const rules of [CHROOT_DIRS, CHROOT_ALL]) {
    assert.equal(resolveLinks(view, "/./lib/../../up/lib//x/", rules), "usr/lib/x");
  }
  assert.ok(view.asked.length > 0);
  for (const path of view.asked) {
    assert.notEqual(path, "", "the root was asked for");
    assert.equal(cleanPath(path), path, `${JSON.stringify(path)} is not canonical`);
  }
});
