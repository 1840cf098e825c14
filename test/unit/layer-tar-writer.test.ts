import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { appendFile, chmod, link, mkdir, symlink, utimes, writeFile } from "node:fs/promises";
import { buffer } from "node:stream/consumers";
import { join } from "node:path";
import { diffLayer, type DiffOptions, type LayerEntry } from "../../src/layer/differ.js";
import { walkSources } from "../../src/layer/sources.js";
import { tarStream } from "../../src/layer/tar-writer.js";
import { FileTree } from "../../src/layer/tree.js";
import { GantryError } from "../../src/model/errors.js";
import { tempDir } from "../fixtures/layer/helpers.js";

const OPTS: DiffOptions = { uid: 0, gid: 0, uname: "root", gname: "root", mtime: 1_700_000_000, perms: [], deletions: false };
const PYTHON = "/usr/bin/python3";

const LONG_DIR = `${"a".repeat(120)}/${"b".repeat(120)}`;
const LONG_FILE = `${LONG_DIR}/${"c".repeat(58)}`; // 300 characters

/** Lays out the same tree under `root`, files created in the given order with the given times. */
async function makeTree(root: string, order: "forward" | "backward", time: number): Promise<void> {
  const files: Array<[string, string, number]> = [
    ["app/run.sh", "#!/bin/sh\nexec node main.js\n", 0o755],
    ["app/main.js", "console.log('hi')\n", 0o644],
    ["app/secret", "s", 0o600],
    ["etc/motd", "hello\n", 0o644],
    [`${LONG_FILE}`, "deep", 0o644],
    ["empty", "", 0o644],
    ["h\u00e9llo/w\u00f6rld \u6f22\u5b57", "unicode", 0o644],
  ];
  if (order === "backward") files.reverse();
  for (const [rel, content, mode] of files) {
    await mkdir(join(root, rel, ".."), { recursive: true });
    await writeFile(join(root, rel), content);
    await chmod(join(root, rel), mode);
    await utimes(join(root, rel), time, time);
  }
  await symlink("run.sh", join(root, "app/start"));
  await symlink(`/${LONG_FILE}`, join(root, "longlink"));
  await link(join(root, "app/main.js"), join(root, "app/main-copy.js"));
  await utimes(root, time, time);
}

async function tarOf(root: string, opts: DiffOptions = OPTS): Promise<{ entries: LayerEntry[]; bytes: Buffer }> {
  const entries = await diffLayer(new FileTree(), await walkSources([{ from: root, to: "/" }]), opts);
  return { entries, bytes: await buffer(tarStream(entries)) };
}

/** Python's tarfile view of a tar: one line per member with every field we set. */
function pythonListing(tar: string): Array<Record<string, unknown>> {
  const script = `
import json, sys, tarfile
out = []
with tarfile.open(sys.argv[1]) as t:
    for m in t.getmembers():
        out.append(dict(name=m.name, type=m.type.decode(), mode=m.mode, uid=m.uid, gid=m.gid, uname=m.uname,
                        gname=m.gname, mtime=m.mtime, size=m.size, linkname=m.linkname, devmajor=m.devmajor,
                        devminor=m.devminor, pax=sorted(m.pax_headers.keys())))
print(json.dumps(out))
`;
  return JSON.parse(execFileSync(PYTHON, ["-c", script, tar]).toString()) as Array<Record<string, unknown>>;
}

test("the tar is byte-identical whatever the sources' location, creation order and times", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    await makeTree(join(dir, "first"), "forward", 1_000_000);
    await makeTree(join(dir, "some/other/place"), "backward", 1_600_000_000);
    const one = await tarOf(join(dir, "first"));
    const two = await tarOf(join(dir, "some/other/place"));
    assert.ok(one.bytes.length > 10_000);
    assert.ok(one.bytes.equals(two.bytes), "same tree, same bytes");
    const other = await tarOf(join(dir, "first"), { ...OPTS, mtime: OPTS.mtime + 1 });
    assert.ok(!other.bytes.equals(one.bytes), "the layer mtime is in the bytes");
  } finally {
    await cleanup();
  }
});

test("python's tarfile and GNU tar read back names, modes, owners, times and links", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    await makeTree(join(dir, "src"), "forward", 5);
    const { bytes } = await tarOf(join(dir, "src"));
    const tar = join(dir, "out.tar");
    await writeFile(tar, bytes);
    const members = pythonListing(tar);
    const byName = new Map(members.map((m) => [m.name as string, m]));
    assert.deepEqual(members.map((m) => m.name), [
      "a".repeat(120), LONG_DIR, LONG_FILE,
      "app", "app/main-copy.js", "app/main.js", "app/run.sh", "app/secret", "app/start",
      "empty", "etc", "etc/motd", "h\u00e9llo", "h\u00e9llo/w\u00f6rld \u6f22\u5b57", "longlink",
    ]);
    for (const m of members) {
      assert.equal(m.mtime, OPTS.mtime, String(m.name));
      assert.deepEqual([m.uid, m.gid, m.uname, m.gname], [0, 0, "root", "root"], String(m.name));
      assert.deepEqual((m.pax as string[]).filter((k) => k !== "path" && k !== "linkpath"), [], "no PAX time records");
    }
    assert.deepEqual(byName.get("app/run.sh"), { ...byName.get("app/run.sh"), type: "0", mode: 0o755, size: 28 });
    assert.deepEqual(byName.get("app/secret"), { ...byName.get("app/secret"), mode: 0o600 });
    assert.deepEqual(byName.get("app"), { ...byName.get("app"), type: "5" });
    assert.deepEqual(byName.get("app/start"), { ...byName.get("app/start"), type: "2", linkname: "run.sh" });
    assert.deepEqual(byName.get("app/main.js"), { ...byName.get("app/main.js"), type: "1", linkname: "app/main-copy.js", size: 0 });
    assert.deepEqual(byName.get("longlink"), { ...byName.get("longlink"), type: "2", linkname: `/${LONG_FILE}` });

    // GNU tar: directories end in "/", the listing shows the fixed owner and time
    const listing = execFileSync("tar", ["--numeric-owner", "-tvf", tar], { env: { ...process.env, TZ: "UTC", LC_ALL: "C" } }).toString();
    assert.match(listing, /^drwxr-xr-x 0\/0 +0 2023-11-14 22:13 app\/$/m);
    assert.match(listing, /^-rw------- 0\/0 +1 2023-11-14 22:13 app\/secret$/m);
    assert.match(listing, /^hrw-r--r-- 0\/0 +0 2023-11-14 22:13 app\/main\.js link to app\/main-copy\.js$/m);
    assert.match(listing, /^lrwxrwxrwx 0\/0 +0 2023-11-14 22:13 app\/start -> run\.sh$/m);
    const names = execFileSync("tar", ["-tf", tar]).toString().split("\n");
    assert.ok(names.includes(`${LONG_FILE}`), "GNU tar reads the 300-character name");
    execFileSync("tar", ["-xf", tar, "-C", join(dir, "src"), "--to-stdout", LONG_FILE]);
  } finally {
    await cleanup();
  }
});

test("special entries: mode 0, large ids, long owner names, devices", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const base = { uname: "", gname: "", mtime: 0, size: 0, uid: 0, gid: 0, mode: 0 };
    const entries: LayerEntry[] = [
      { ...base, path: "dev", type: "dir", mode: 0o755 },
      { ...base, path: "dev/null", type: "char", mode: 0o666, devmajor: 1, devminor: 3 },
      { ...base, path: "dev/sda", type: "block", mode: 0o660, devmajor: 8, devminor: 0 },
      { ...base, path: "etc/.wh.passwd", type: "file" },
      { ...base, path: "home/big", type: "dir", mode: 0o700, uid: 3_000_000, gid: 2_500_000, uname: "u".repeat(40), gname: "g" },
      { ...base, path: "run/fifo", type: "fifo", mode: 0o600 },
      // Past the header's six octal digits (262,143) but within seven: these once came out as 262,143.
      { ...base, path: "srv/mid", type: "dir", mode: 0o755, uid: 300_000, gid: 262_144 },
    ];
    const tar = join(dir, "special.tar");
    await writeFile(tar, await buffer(tarStream(entries)));
    const m = new Map(pythonListing(tar).map((x) => [x.name as string, x]));
    assert.deepEqual(m.get("dev/null"), { ...m.get("dev/null"), type: "3", mode: 0o666, devmajor: 1, devminor: 3 });
    assert.deepEqual(m.get("dev/sda"), { ...m.get("dev/sda"), type: "4", devmajor: 8, devminor: 0 });
    assert.deepEqual(m.get("etc/.wh.passwd"), { ...m.get("etc/.wh.passwd"), type: "0", mode: 0, size: 0 }, "mode 0 stays 0");
    assert.deepEqual(m.get("home/big"), { ...m.get("home/big"), uid: 3_000_000, gid: 2_500_000, uname: "u".repeat(40), gname: "g" });
    assert.deepEqual(m.get("run/fifo"), { ...m.get("run/fifo"), type: "6", mode: 0o600 });
    assert.deepEqual(m.get("srv/mid"), { ...m.get("srv/mid"), uid: 300_000, gid: 262_144 });
  } finally {
    await cleanup();
  }
});

test("a file that changed size since the walk fails the tar, naming the file", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const src = join(dir, "src");
    await mkdir(src);
    await writeFile(join(src, "growing.log"), "start\n");
    const entries = await diffLayer(new FileTree(), await walkSources([{ from: src, to: "/" }]), OPTS);
    await appendFile(join(src, "growing.log"), "more\n");
    await assert.rejects(buffer(tarStream(entries)), (err: unknown) =>
      err instanceof GantryError && err.code === "SOURCE_UNREADABLE" && err.message.includes(join(src, "growing.log")));
    await writeFile(join(src, "growing.log"), "");
    await assert.rejects(buffer(tarStream(entries)), /changed size/);
  } finally {
    await cleanup();
  }
});

test("entries without a body wait for the tar's reader: 100,000 empty files are not queued ahead of it", async () => {
  let made = 0;
  function* entries(): Generator<LayerEntry> {
    for (; made < 100_000; made++) {
      yield { path: `many/f${made}`, type: "file", mode: 0o644, uid: 0, gid: 0, uname: "", gname: "", mtime: 0, size: 0 };
    }
  }
  const tar = tarStream(entries());
  await new Promise((resolve) => setTimeout(resolve, 300));
  // Nobody reads: the feed stops about a buffer (1 MiB, some 2,000 headers) ahead.
  assert.ok(made < 10_000, `${made} entries were taken with nobody reading`);
  let bytes = 0;
  for await (const chunk of tar) bytes += (chunk as Buffer).length;
  assert.equal(made, 100_000);
  assert.ok(bytes >= 100_000 * 512, `${bytes} bytes`);
});
