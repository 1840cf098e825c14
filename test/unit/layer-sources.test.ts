import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmod, chown, link, lstat, mkdir, symlink, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { diffLayer } from "../../src/layer/differ.js";
import { walkSources, type SourceNode, type SourceTree } from "../../src/layer/sources.js";
import { FileTree } from "../../src/layer/tree.js";
import { GantryError } from "../../src/model/errors.js";
import { tempDir } from "../fixtures/layer/helpers.js";

const code = (c: string, text?: string) => (err: unknown): boolean =>
  err instanceof GantryError && err.code === c && (text === undefined || err.message.includes(text));

/** The tree without host paths: what must not depend on where the sources live. */
function shape(tree: SourceTree): Array<[string, Omit<SourceNode, "hostPath">]> {
  return [...tree.entries()].map(([path, { hostPath: _ignored, ...rest }]) => [path, rest]);
}

/** Writes the same files in the given order, with the given mtime, under `root`. */
async function makeSource(root: string, order: "forward" | "backward", mtime: number): Promise<void> {
  const files: Array<[string, string, number]> = [
    ["bin/tool", "#!/bin/sh\necho tool\n", 0o755],
    ["etc/conf", "a=1\n", 0o644],
    ["data/x", "x", 0o600],
    ["data/y", "y", 0o644],
    ["zz/last", "last", 0o644],
  ];
  if (order === "backward") files.reverse();
  for (const [rel, content, mode] of files) {
    await mkdir(join(root, rel, ".."), { recursive: true });
    await writeFile(join(root, rel), content);
    await chmod(join(root, rel), mode);
    await utimes(join(root, rel), mtime, mtime);
  }
  await symlink("bin/tool", join(root, "link"));
  await writeFile(join(root, "hard1"), "shared");
  await link(join(root, "hard1"), join(root, "hard2"));
  execFileSync("mkfifo", ["-m", "0640", join(root, "pipe")]);
}

test("walkSources records type, mode, size, link targets, hardlink groups", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    await makeSource(join(dir, "a"), "forward", 1000);
    const tree = await walkSources([{ from: join(dir, "a"), to: "/" }]);
    assert.deepEqual([...tree.paths()], ["bin", "bin/tool", "data", "data/x", "data/y", "etc", "etc/conf", "hard1", "hard2", "link", "pipe", "zz", "zz/last"]);
    assert.deepEqual(tree.get("bin/tool"), { type: "file", mode: 0o755, size: 20, hostPath: join(dir, "a/bin/tool") });
    assert.deepEqual(tree.get("link"), { type: "symlink", mode: 0o777, size: 0, linkname: "bin/tool" });
    assert.equal(tree.get("pipe")?.type, "fifo");
    assert.equal(tree.get("pipe")?.mode, 0o640);
    assert.equal(tree.get("hard1")?.hardlinkGroup, "hard1");
    assert.equal(tree.get("hard2")?.hardlinkGroup, "hard1");
    assert.equal(tree.get("etc/conf")?.hardlinkGroup, undefined);
  } finally {
    await cleanup();
  }
});

test("the walk does not depend on location, creation order or times", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    await makeSource(join(dir, "one"), "forward", 1000);
    await makeSource(join(dir, "elsewhere/two"), "backward", 2_000_000_000);
    const one = await walkSources([{ from: join(dir, "one"), to: "/" }]);
    const two = await walkSources([{ from: join(dir, "elsewhere/two"), to: "/" }]);
    assert.deepEqual(shape(two), shape(one));
  } finally {
    await cleanup();
  }
});

test("later sources win per path; a file over a directory removes its children", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    await makeSource(join(dir, "a"), "forward", 1000);
    const b = join(dir, "b");
    await mkdir(join(b, "etc"), { recursive: true });
    await writeFile(join(b, "etc/conf"), "b=2\n");
    await writeFile(join(b, "data"), "data is a file now");
    await writeFile(join(b, "hard2"), "replaced, no longer linked");
    const app = join(dir, "app");
    await mkdir(app, { mode: 0o750 });
    await chmod(app, 0o750);
    await writeFile(join(app, "main.js"), "main");
    const tree = await walkSources([
      { from: join(dir, "a"), to: "/" },
      { from: b, to: "/" },
      { from: app, to: "/opt/app" },
      { from: join(app, "main.js"), to: "/usr/local/bin/main" },
    ]);
    assert.equal(tree.get("etc/conf")?.hostPath, join(b, "etc/conf"));
    assert.equal(tree.get("data")?.type, "file");
    assert.equal(tree.has("data/x"), false);
    assert.equal(tree.get("hard1")?.hardlinkGroup, undefined, "a group of one is no group");
    assert.equal(tree.get("hard2")?.hardlinkGroup, undefined);
    assert.equal(tree.has("bin/tool"), true, "earlier sources' other paths stay");
    assert.deepEqual(tree.get("opt"), { type: "dir", mode: 0o755, size: 0, synthetic: true });
    assert.deepEqual(tree.get("opt/app"), { type: "dir", mode: 0o750, size: 0 });
    assert.equal(tree.get("opt/app/main.js")?.hostPath, join(app, "main.js"));
    assert.equal(tree.get("usr/local/bin/main")?.hostPath, join(app, "main.js"));
  } finally {
    await cleanup();
  }
});

test("owners are ignored unless asked for (runAsRoot keeps the owners its script left)", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const root = join(dir, "root");
    await mkdir(join(root, "home/app"), { recursive: true });
    await writeFile(join(root, "home/app/data"), "d");
    await chown(join(root, "home/app/data"), 1234, 4321).catch(() => undefined);
    const owned = (await lstat(join(root, "home/app/data"))).uid === 1234;
    const plain = await walkSources([{ from: root, to: "/" }]);
    assert.equal(plain.get("home/app/data")?.uid, undefined, "host owners never leak into a copyToRoot layer");
    if (!owned) return; // chown needs root
    const withOwners = await walkSources([{ from: root, to: "/" }], { owners: true });
    assert.equal(withOwners.get("home/app/data")?.uid, 1234);
    assert.equal(withOwners.get("home/app/data")?.gid, 4321);
    const entries = await diffLayer(new FileTree(), withOwners, { uid: 0, gid: 0, uname: "root", gname: "root", mtime: 0, perms: [], deletions: true });
    const data = entries.find((e) => e.path === "home/app/data");
    assert.deepEqual([data?.uid, data?.gid, data?.uname, data?.gname], [1234, 4321, "", ""]);
  } finally {
    await cleanup();
  }
});

test("names reserved for whiteouts are refused, naming the host path", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    await mkdir(join(dir, "src/deep"), { recursive: true });
    await writeFile(join(dir, "src/deep/.wh.sneaky"), "");
    await assert.rejects(walkSources([{ from: join(dir, "src"), to: "/" }]), code("UNSAFE_PATH", join(dir, "src/deep/.wh.sneaky")));
    await mkdir(join(dir, "src2/.wh..wh..opq"), { recursive: true });
    await assert.rejects(walkSources([{ from: join(dir, "src2"), to: "/" }]), code("UNSAFE_PATH"));
    await mkdir(join(dir, "clean"));
    await assert.rejects(walkSources([{ from: join(dir, "clean"), to: "/opt/.wh.app" }]), code("UNSAFE_PATH", "/opt/.wh.app"));
  } finally {
    await cleanup();
  }
});

test("unreadable, missing or relative sources are reported", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    await assert.rejects(walkSources([{ from: join(dir, "missing"), to: "/" }]), code("SOURCE_UNREADABLE", join(dir, "missing")));
    await assert.rejects(walkSources([{ from: "relative/dir", to: "/" }]), code("SPEC_INVALID"));
    await writeFile(join(dir, "file"), "x");
    await assert.rejects(walkSources([{ from: join(dir, "file"), to: "/" }]), code("SPEC_INVALID"));
    await assert.rejects(walkSources([{ from: dir, to: "/../x" }]), code("UNSAFE_PATH"));
    if (process.getuid?.() !== 0) {
      await mkdir(join(dir, "locked"), { mode: 0o000 });
      await assert.rejects(walkSources([{ from: join(dir, "locked"), to: "/" }]), code("SOURCE_UNREADABLE", join(dir, "locked")));
    }
  } finally {
    await cleanup();
  }
});
