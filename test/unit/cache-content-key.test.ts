/**
 * Content keys (cache/content-key.ts) and the stat index (cache/stat-index.ts): a layer's
 * key is the same wherever its sources live and whatever their times, changes with every
 * input of the layer's bytes, and costs no reads on a warm machine; the stat index trusts
 * a fingerprint only when it is unchanged and old enough. Source trees are made here with
 * plain fs calls.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmod, link, lstat, mkdir, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { keyOfWalk, layerKey, walkForKey, type LayerRecipe } from "../../src/cache/content-key.js";
import { StatIndex } from "../../src/cache/stat-index.js";
import { DEFAULT_GZIP_LEVEL } from "../../src/compression/compression.js";
import { sha256 } from "../../src/model/digest.js";
import { settle } from "../helpers/settle.js";
import { tmpDir } from "../helpers/tmp.js";

const BASE_DIFF_ID = sha256("a base layer");

async function writeSources(root: string): Promise<void> {
  await mkdir(join(root, "sub"), { recursive: true });
  await writeFile(join(root, "a.txt"), "alpha\n");
  await writeFile(join(root, "sub/b.txt"), "bravo\n");
  await symlink("a.txt", join(root, "link"));
}

function recipe(from: string, extra: Partial<LayerRecipe> = {}): LayerRecipe {
  return {
    below: [BASE_DIFF_ID],
    sources: [{ from, to: "/" }],
    perms: [],
    uid: 0, gid: 0, uname: "", gname: "",
    mtime: 1,
    compression: "gzip",
    ...extra,
  };
}

test("the key is the same for the same content, wherever it lives and whatever its times and inodes", async (t) => {
  const dir = await tmpDir(t);
  await writeSources(join(dir, "src"));
  const first = await layerKey(recipe(join(dir, "src")));
  assert.match(first.hex, /^[0-9a-f]{64}$/);
  assert.equal((await layerKey(recipe(join(dir, "src")))).hex, first.hex);
  // Another "machine": a copy at another path, every file new (new inodes, ctimes, mtimes).
  execFileSync("cp", ["-r", join(dir, "src"), join(dir, "elsewhere")]);
  execFileSync("touch", ["-d", "2001-02-03", join(dir, "elsewhere/a.txt")]);
  assert.notEqual((await lstat(join(dir, "elsewhere/a.txt"))).ino, (await lstat(join(dir, "src/a.txt"))).ino);
  assert.equal((await layerKey(recipe(join(dir, "elsewhere")))).hex, first.hex);
});

test("an edit of the same size with the mtime put back changes the key, with a warm stat index", async (t) => {
  const dir = await tmpDir(t);
  const src = join(dir, "src");
  await writeSources(src);
  await settle(dir);
  const stat = new StatIndex(join(dir, "stat"));
  const key = await layerKey(recipe(src), { stat });
  await stat.save();
  const file = join(src, "a.txt");
  const before = await lstat(file, { bigint: true });
  // GNU touch copies times to the nanosecond (utimes from JavaScript rounds them).
  execFileSync("touch", ["-r", file, join(dir, "times")]);
  await writeFile(file, "ALPHA\n");
  execFileSync("touch", ["-r", join(dir, "times"), file]);
  const after = await lstat(file, { bigint: true });
  assert.equal(after.size, before.size, "same size");
  assert.equal(after.mtimeNs, before.mtimeNs, "mtime restored");
  const edited = await layerKey(recipe(src), { stat: new StatIndex(join(dir, "stat")) });
  assert.notEqual(edited.hex, key.hex, "the ctime moved, so the file was read again");
  assert.equal(edited.hashed, 1, "only the edited file was read");
});

test("a warm stat index reads no file; a fresh one reads each file once", async (t) => {
  const dir = await tmpDir(t);
  const src = join(dir, "src");
  await writeSources(src);
  await settle(dir);
  const cold = await layerKey(recipe(src), { stat: new StatIndex(join(dir, "stat")) });
  assert.equal(cold.hashed, 2, "a.txt and sub/b.txt");
  // Not saved: the next index knows nothing.
  const stat = new StatIndex(join(dir, "stat"));
  assert.equal((await layerKey(recipe(src), { stat })).hashed, cold.hashed);
  await stat.save();
  const warm = await layerKey(recipe(src), { stat: new StatIndex(join(dir, "stat")) });
  assert.equal(warm.hashed, 0);
  assert.equal(warm.hex, cold.hex);
  // A damaged index is a cold one, never a wrong one.
  for (const name of await readdir(join(dir, "stat"))) await writeFile(join(dir, "stat", name), "garbage\0\n");
  const damaged = await layerKey(recipe(src), { stat: new StatIndex(join(dir, "stat")) });
  assert.equal(damaged.hashed, cold.hashed);
  assert.equal(damaged.hex, cold.hex);
});

test("a file changed just before it was hashed is not recorded: it is read again next time", async (t) => {
  const dir = await tmpDir(t);
  const src = join(dir, "src");
  await writeSources(src);
  await settle(dir);
  await writeFile(join(src, "a.txt"), "fresh\n");
  const stat = new StatIndex(join(dir, "stat"));
  const first = await layerKey(recipe(src), { stat });
  await stat.save();
  const again = await layerKey(recipe(src), { stat: new StatIndex(join(dir, "stat")) });
  assert.equal(again.hashed, 1, "the racy a.txt is hashed again; sub/b.txt is vouched for");
  assert.equal(again.hex, first.hex);
});

test("with the hashing left to packing, the key takes what packing read; a file changed after the walk is read again next time", async (t) => {
  const dir = await tmpDir(t);
  const src = join(dir, "src");
  await writeSources(src);
  await settle(dir);
  const stat = new StatIndex(join(dir, "stat"));
  const walked = await walkForKey(recipe(src).sources, { stat, deferHashing: true });
  // Written after the walk: the walk's fingerprint is of the old bytes. Packing read what
  // `learnt` says (as if the file moved on again after it was read).
  await writeFile(join(src, "a.txt"), "ALPHA\n");
  const learnt = new Map([["a.txt", sha256("as packed\n")]]);
  const key = await keyOfWalk(recipe(src), walked.tree, { stat, prehashed: walked.prehashed, learnt });
  assert.equal(key.digests.get(join(src, "a.txt")), sha256("as packed\n"), "what packing read, not read again");
  assert.equal(key.digests.get(join(src, "sub/b.txt")), sha256("bravo\n"), "not packed, so read for the key");
  await stat.save();
  const again = await layerKey(recipe(src), { stat: new StatIndex(join(dir, "stat")) });
  assert.equal(again.hashed, 1, "a.txt is read again (its fingerprint moved); sub/b.txt is vouched for");
  assert.equal(again.digests.get(join(src, "a.txt")), sha256("ALPHA\n"));
});

test("every input of the layer's bytes is part of its key", async (t) => {
  const dir = await tmpDir(t);
  const src = join(dir, "src");
  await writeSources(src);
  const keyOf = async (extra: Partial<LayerRecipe> = {}): Promise<string> => (await layerKey(recipe(src, extra))).hex;
  const base = await keyOf();
  const variants: Record<string, Partial<LayerRecipe>> = {
    "another base": { below: [sha256("another base")] },
    "one more layer below": { below: [BASE_DIFF_ID, sha256("an earlier new layer")] },
    "laid at /app": { sources: [{ from: src, to: "/app" }] },
    "the sources twice": { sources: [{ from: src, to: "/" }, { from: src, to: "/again" }] },
    "a perms rule": { perms: [{ path: "/a.txt", mode: 0o600 }] },
    "uid": { uid: 1 },
    "gid": { gid: 1 },
    "uname": { uname: "root" },
    "gname": { gname: "root" },
    "mtime": { mtime: 2 },
    "zstd": { compression: "zstd" },
    "no compression": { compression: "none" },
    "gzip level 9": { level: 9 },
  };
  const keys = new Map<string, string>([["the recipe as is", base]]);
  for (const [what, extra] of Object.entries(variants)) keys.set(what, await keyOf(extra));
  // The default level spelled out is the same layer.
  assert.equal(await keyOf({ level: DEFAULT_GZIP_LEVEL }), base, "gzip's default level given explicitly");

  await writeFile(join(src, "a.txt"), "alphA\n");
  keys.set("a file's content, same size", await keyOf());
  await chmod(join(src, "a.txt"), 0o600);
  keys.set("a mode", await keyOf());
  await writeFile(join(src, "sub/new.txt"), "");
  keys.set("a new empty file", await keyOf());
  await rm(join(src, "sub/new.txt"));
  await rm(join(src, "link"));
  await symlink("sub/b.txt", join(src, "link"));
  keys.set("a symlink's target", await keyOf());
  await link(join(src, "a.txt"), join(src, "hard"));
  keys.set("a hardlink", await keyOf());
  await mkdir(join(src, "empty-dir"));
  keys.set("an empty directory", await keyOf());

  const seen = new Map<string, string>();
  for (const [what, hex] of keys) {
    const clash = seen.get(hex);
    assert.equal(clash, undefined, `"${what}" gives the same key as "${clash}"`);
    seen.set(hex, what);
  }
});
