/**
 * The ELF reader (src/builder/closure/elf.ts) against binutils' readelf, on real programs
 * and libraries of this machine and on hand-made files of the other classes and byte
 * orders (test/helpers/elf-maker.ts): the loader, the needed libraries, the soname and
 * the search paths must be what readelf reads, and a damaged file must be one FormatError
 * naming it.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { realpathSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bufferSource, DF_1_NODEFLIB, parseElf, readElfFile, type ElfFile } from "../../src/builder/closure/elf.js";
import { FormatError } from "../../src/model/errors.js";
import { makeElf, type ElfRecipe } from "../helpers/elf-maker.js";
import { have } from "../helpers/tools.js";
import { tmpDir } from "../helpers/tmp.js";

interface ReadelfView { interpreter?: string; needed: string[]; soname?: string; rpath?: string; runpath?: string; dynamic: boolean }

/** What `readelf -l -d` says of a file. */
function readelf(path: string): ReadelfView {
  const text = execFileSync("readelf", ["-W", "-l", "-d", path], { encoding: "utf8", env: { ...process.env, LC_ALL: "C" } });
  const view: ReadelfView = { needed: [], dynamic: !/There is no dynamic section/.test(text) };
  const interp = /\[Requesting program interpreter: (.*)\]/.exec(text);
  if (interp?.[1] !== undefined) view.interpreter = interp[1];
  for (const [, kind, value] of text.matchAll(/\((NEEDED|SONAME|RPATH|RUNPATH)\)\s+[^[\n]*\[(.*)\]/g)) {
    if (kind === "NEEDED") view.needed.push(value!);
    else if (kind === "SONAME") view.soname = value!;
    else if (kind === "RPATH") view.rpath = value!;
    else view.runpath = value!;
  }
  return view;
}

function asReadelfView(elf: ElfFile): ReadelfView {
  const view: ReadelfView = { needed: elf.dynamic?.needed ?? [], dynamic: elf.dynamic !== undefined };
  if (elf.interpreter !== undefined) view.interpreter = elf.interpreter;
  if (elf.dynamic?.soname !== undefined) view.soname = elf.dynamic.soname;
  if (elf.dynamic?.rpath !== undefined) view.rpath = elf.dynamic.rpath;
  if (elf.dynamic?.runpath !== undefined) view.runpath = elf.dynamic.runpath;
  return view;
}

function needReadelf(t: TestContext): boolean {
  if (have("readelf")) return true;
  t.skip("readelf (binutils) is not installed");
  return false;
}

const REAL_FILES = ["/usr/bin/node", "/usr/bin/perl", "/bin/ls", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"];

test("real programs and libraries read as readelf reads them: loader, needed libraries, soname", (t) => {
  if (!needReadelf(t)) return;
  let checked = 0;
  for (const path of REAL_FILES) {
    let real: string;
    try { real = realpathSync(path); } catch { continue; }
    const elf = readElfFile(real);
    assert.deepEqual(asReadelfView(elf), readelf(real), path);
    if (process.arch === "x64") {
      assert.equal(elf.elfClass, 2, `${path} is 64-bit`);
      assert.equal(elf.data, 1, `${path} is little-endian`);
      assert.equal(elf.machine, 62, `${path} is x86-64`);
    }
    checked++;
  }
  assert.ok(checked >= 3, "at least three of the usual files exist here");
  const node = readElfFile(realpathSync(process.execPath));
  assert.ok(node.interpreter?.startsWith("/"), "node (this very process) names its loader");
  assert.ok((node.dynamic?.needed.length ?? 0) > 0, "and needs libraries");
  if (process.arch === "x64") assert.equal(readElfFile(realpathSync("/lib/x86_64-linux-gnu/libc.so.6")).dynamic?.soname, "libc.so.6");
});

test("a static program has neither a loader nor a dynamic section", (t) => {
  if (!needReadelf(t)) return;
  const busybox = ["/usr/bin/busybox", "/bin/busybox"].find((p) => { try { return readelf(p).dynamic === false; } catch { return false; } });
  if (busybox === undefined) return t.skip("no static busybox here");
  const elf = readElfFile(busybox);
  assert.equal(elf.interpreter, undefined);
  assert.equal(elf.dynamic, undefined);
});

const HAND_MADE: Array<{ what: string; recipe: ElfRecipe }> = [
  {
    what: "32-bit big-endian (PowerPC)",
    recipe: { is64: false, little: false, machine: 20, interpreter: "/lib/ld.so.1", needed: ["libc.so.6", "libm.so.6"], rpath: "$ORIGIN/../lib:/opt/x" },
  },
  {
    what: "64-bit big-endian (s390x)",
    recipe: { is64: true, little: false, machine: 22, interpreter: "/lib/ld64.so.1", needed: ["libz.so.1"], runpath: "/usr/local/lib", soname: "libexample.so.3", flags1: DF_1_NODEFLIB },
  },
  {
    what: "32-bit little-endian (MIPS), a shared library with no loader",
    recipe: { is64: false, little: true, machine: 8, needed: ["libgcc_s.so.1"], soname: "libtiny.so" },
  },
  {
    what: "64-bit little-endian with its program header count in section 0 (PN_XNUM)",
    recipe: { is64: true, little: true, machine: 62, interpreter: "/lib64/ld-linux-x86-64.so.2", needed: ["libc.so.6"], xnum: true },
  },
];

for (const { what, recipe } of HAND_MADE) {
  test(`a hand-made ${what} header reads as made, and as readelf reads it`, async (t) => {
    const bytes = makeElf(recipe);
    const elf = parseElf(bufferSource(bytes), what);
    assert.equal(elf.elfClass, recipe.is64 ? 2 : 1);
    assert.equal(elf.data, recipe.little ? 1 : 2);
    assert.equal(elf.machine, recipe.machine);
    assert.equal(elf.type, 3);
    assert.equal(elf.interpreter, recipe.interpreter);
    assert.deepEqual(elf.dynamic?.needed, recipe.needed ?? []);
    assert.equal(elf.dynamic?.soname, recipe.soname);
    assert.equal(elf.dynamic?.rpath, recipe.rpath);
    assert.equal(elf.dynamic?.runpath, recipe.runpath);
    assert.equal(elf.dynamic?.flags1, recipe.flags1 ?? 0);
    if (recipe.xnum) return; // readelf needs a section string table to take PN_XNUM files
    if (!needReadelf(t)) return;
    const file = join(await tmpDir(t), "made.elf");
    writeFileSync(file, bytes);
    assert.deepEqual(asReadelfView(elf), readelf(file), "readelf agrees with the maker and the parser");
  });
}

function formatErrorOf(bytes: Buffer, what = "the file x"): string {
  try {
    parseElf(bufferSource(bytes), what);
  } catch (err) {
    assert.ok(err instanceof FormatError, `a FormatError, not ${String(err)}`);
    assert.ok(err.message.includes(what), err.message);
    return err.message;
  }
  assert.fail("a damaged file was read");
}

test("damaged files are one FormatError naming the file", () => {
  const good = makeElf({ is64: true, little: true, machine: 62, interpreter: "/lib64/ld-linux-x86-64.so.2", needed: ["libc.so.6"] });
  assert.match(formatErrorOf(Buffer.from("#!/bin/sh\necho hi\n")), /not an ELF file/);
  assert.match(formatErrorOf(good.subarray(0, 40)), /truncated or corrupt: its file header/);
  assert.match(formatErrorOf(good.subarray(0, 80)), /program header table lies outside/);
  const badClass = Buffer.from(good);
  badClass[4] = 7;
  assert.match(formatErrorOf(badClass), /unknown class 7/);
  // DT_STRTAB moved to an address no PT_LOAD maps: the maker ends the file with DT_STRTAB, DT_STRSZ, DT_NULL.
  const unmapped = Buffer.from(good);
  const strtabEntry = unmapped.length - 3 * 16;
  assert.equal(unmapped.readBigUInt64LE(strtabEntry), 5n, "the maker's layout");
  unmapped.writeBigUInt64LE(0x7fff0000n, strtabEntry + 8);
  assert.match(formatErrorOf(unmapped), /DT_STRTAB address 0x7fff0000 that no PT_LOAD segment maps/);
});

test("a file on disk is read by positioned reads, and an unreadable one names its path", async (t) => {
  const dir = await tmpDir(t);
  const made = join(dir, "lib.so");
  writeFileSync(made, makeElf({ is64: false, little: false, machine: 20, needed: ["a.so"] }));
  assert.deepEqual(readElfFile(made).dynamic?.needed, ["a.so"]);
  assert.throws(() => readElfFile(join(dir, "missing")), (err: Error) => err.message.includes(join(dir, "missing")) && /does not exist/.test(err.message));
});
