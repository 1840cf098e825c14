import { test } from "node:test";
import assert from "node:assert/strict";
import { createReadStream } from "node:fs";
import { mkdir, readFile, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GantryError } from "../../src/model/errors.js";
import { TarBag } from "../../src/archive/tar-index.js";
import { DirBag } from "../../src/archive/file-bag.js";
import { tmpDir } from "../helpers/tmp.js";
import { run } from "../helpers/tools.js";
import { drain, fixture, pythonTar, type PyMember } from "./formats-fixtures.js";

function isCode(code: string, mention?: string): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof GantryError, `not a GantryError: ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (mention !== undefined) assert.ok(err.message.includes(mention), `"${err.message}" does not mention ${mention}`);
    return true;
  };
}

test("GNU tar long names (GNU, PAX and ustar prefix) are indexed with their data", async (t) => {
  const dir = await tmpDir(t, "gantry-tarindex-");
  const long = `${"d".repeat(60)}/${"e".repeat(60)}/${"f".repeat(70)}.txt`;
  await mkdir(join(dir, "src", long, ".."), { recursive: true });
  await writeFile(join(dir, "src", long), "long one\n");
  await writeFile(join(dir, "src", "short"), "short\n");
  for (const format of ["gnu", "posix", "ustar"]) {
    const archive = join(dir, `${format}.tar`);
    await run("tar", [`--format=${format}`, "-C", join(dir, "src"), "-cf", archive, "."]);
    const bag = await TarBag.open(archive);
    assert.equal((await bag.readBytes(long)).toString(), "long one\n", format);
    assert.equal((await bag.readBytes(`./short`)).toString(), "short\n", format);
    assert.equal(await bag.size(long), 9, format);
    assert.equal((await bag.head(long, 4)).toString(), "long", format);
    assert.equal(await bag.has("d".repeat(60)), false, "a directory is not a file");
    assert.equal(await bag.has("absent"), false);
    await bag.close();
  }
});

test("symlinks and hard links are followed inside the archive, never out of it", async (t) => {
  const dir = await tmpDir(t, "gantry-tarindex-");
  const archive = join(dir, "links.tar");
  await pythonTar(archive, [
    { name: "b", dir: true },
    { name: "b/file", data: "payload" },
    { name: "a/layer.tar", symlink: "../b/file" },
    { name: "c", symlink: "a" },
    { name: "h", hardlink: "b/file" },
    { name: "twice", symlink: "c/layer.tar" },
    { name: "escape", symlink: "../../etc/passwd" },
    { name: "absolute", symlink: "/etc/passwd" },
    { name: "loop1", symlink: "loop2" },
    { name: "loop2", symlink: "loop1" },
  ]);
  const bag = await TarBag.open(archive);
  for (const name of ["a/layer.tar", "c/layer.tar", "h", "twice"]) {
    assert.equal((await bag.readBytes(name)).toString(), "payload", name);
    assert.equal(await bag.size(name), 7, name);
    assert.equal((await drain(await bag.open(name))).size, 7, name);
  }
  await assert.rejects(bag.readBytes("escape"), isCode("UNSAFE_PATH", "escape"));
  await assert.rejects(bag.readBytes("absolute"), isCode("UNSAFE_PATH", "absolute"));
  await assert.rejects(bag.readBytes("../b/file"), isCode("UNSAFE_PATH"));
  await assert.rejects(bag.readBytes("loop1"), isCode("UNSAFE_PATH", "loop"));
  await assert.rejects(bag.readBytes("missing"), isCode("FORMAT_INVALID", `missing in ${archive}`));
});

test("a truncated or damaged tar is a FormatError naming the file", async (t) => {
  const dir = await tmpDir(t, "gantry-tarindex-");
  const whole = await readFile(fixture("skopeo-app.tar"));
  const cut = join(dir, "cut.tar");
  await writeFile(cut, whole.subarray(0, 3000)); // inside the first layer's data
  await assert.rejects(TarBag.open(cut), isCode("FORMAT_INVALID", cut));
  await assert.rejects(TarBag.open(cut), /truncated/);

  // Every entry whole, but cut where the end-of-archive marker starts (python's tarfile says where).
  const entriesEnd = Number((await run("python3", ["-c", "import sys, tarfile; t = tarfile.open(sys.argv[1]); t.getmembers(); print(t.offset)", fixture("skopeo-app.tar")])).stdout.toString());
  const noEnd = join(dir, "no-end.tar");
  await writeFile(noEnd, whole);
  await truncate(noEnd, entriesEnd);
  await assert.rejects(TarBag.open(noEnd), isCode("FORMAT_INVALID", "end-of-archive"));

  const garbage = join(dir, "garbage.tar");
  await writeFile(garbage, Buffer.concat([Buffer.from("this is not a tar archive"), Buffer.alloc(1024, 0x41)]));
  await assert.rejects(TarBag.open(garbage), isCode("FORMAT_INVALID", "not a tar archive"));
  const empty = join(dir, "empty.tar");
  await writeFile(empty, "");
  await assert.rejects(TarBag.open(empty), isCode("FORMAT_INVALID", "empty"));

  const damaged = Buffer.from(whole);
  damaged[512 * 0 + 100] = damaged[512 * 0 + 100]! ^ 0xff; // the first header's mode field
  const bad = join(dir, "bad-header.tar");
  await writeFile(bad, damaged);
  await assert.rejects(TarBag.open(bad), isCode("FORMAT_INVALID", bad));
});

test("compressed archives and streams are spooled once, then read by range", async (t) => {
  const dir = await tmpDir(t, "gantry-tarindex-");
  const gz = join(dir, "app.tar.gz");
  await writeFile(gz, (await run("gzip", ["-c", fixture("skopeo-app.tar")])).stdout);
  const zst = join(dir, "app.tar.zst");
  await writeFile(zst, (await run("zstd", ["-q", "-c", fixture("skopeo-app.tar")])).stdout);
  const plain = await TarBag.open(fixture("skopeo-app.tar"));
  const want = await plain.readBytes("manifest.json");
  for (const bag of [
    await TarBag.open(gz),
    await TarBag.open(zst),
    await TarBag.fromStream(createReadStream(fixture("skopeo-app.tar")), "standard input"),
    await TarBag.fromStream(createReadStream(gz), "standard input"),
  ]) {
    assert.deepEqual(await bag.readBytes("manifest.json"), want, bag.label);
    assert.deepEqual(bag.names(), plain.names(), bag.label);
  }
  const broken = join(dir, "broken.tar.gz");
  const gzBytes = await readFile(gz);
  await writeFile(broken, gzBytes.subarray(0, gzBytes.length - 40));
  await assert.rejects(TarBag.open(broken), isCode("FORMAT_INVALID", broken));
});

test("an aborted read fails with ABORTED", async () => {
  const bag = await TarBag.open(fixture("skopeo-app.tar"));
  const controller = new AbortController();
  controller.abort();
  const name = bag.names().find((n) => n.endsWith(".tar") && !n.includes("/"))!;
  await assert.rejects(drain(await bag.open(name, controller.signal)), isCode("ABORTED"));
});

test("a directory bag refuses names and symlinks that leave it", async (t) => {
  const dir = await tmpDir(t, "gantry-dirbag-");
  await writeFile(join(dir, "inside"), "ok");
  await run("ln", ["-s", "/etc/hostname", join(dir, "out")]);
  await run("ln", ["-s", "inside", join(dir, "in")]);
  const bag = new DirBag(dir);
  assert.equal((await bag.readBytes("in")).toString(), "ok");
  assert.equal(await bag.has("nope"), false);
  await assert.rejects(bag.readBytes("out"), isCode("UNSAFE_PATH", "out"));
  await assert.rejects(bag.readBytes("../etc/hostname"), isCode("UNSAFE_PATH"));
  await assert.rejects(bag.readBytes("nope"), isCode("FORMAT_INVALID", "nope"));
});

test("a name held twice is refused when the archive is opened; a directory repeated is not", async (t) => {
  const dir = await tmpDir(t, "gantry-tarindex-");
  const repeatedDir = join(dir, "dirs.tar");
  await pythonTar(repeatedDir, [{ name: "blobs", dir: true }, { name: "blobs/x", data: "x" }, { name: "./blobs/", dir: true }]);
  const bag = await TarBag.open(repeatedDir);
  assert.equal((await bag.readBytes("blobs/x")).toString(), "x");
  await bag.close();
  const cases: { label: string; name: string; members: PyMember[] }[] = [
    { label: "the same file", name: "manifest.json", members: [{ name: "manifest.json", data: "[]" }, { name: "manifest.json", data: "[]" }] },
    { label: "one spelled with ./", name: "index.json", members: [{ name: "index.json", data: "{}" }, { name: "./index.json", data: "{}" }] },
    { label: "a file and a symlink", name: "a", members: [{ name: "a", data: "1" }, { name: "b", data: "2" }, { name: "./b/../a", symlink: "b" }] },
    { label: "a directory and a file", name: "oci-layout", members: [{ name: "oci-layout", dir: true }, { name: "oci-layout", data: "{}" }] },
  ];
  for (const [i, { label, name, members }] of cases.entries()) {
    const archive = join(dir, `case-${i}.tar`);
    await pythonTar(archive, members);
    await assert.rejects(TarBag.open(archive), isCode("FORMAT_INVALID", `${name} in ${archive} occurs 2 times`), label);
  }
});
