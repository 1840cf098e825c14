/**
 * The ld.so.cache reader (src/builder/closure/ld-cache.ts) against glibc's own ldconfig:
 * the host's cache and caches ldconfig writes in each of its formats (`-c old`, `compat`,
 * `new`) read as `ldconfig -p` lists them; hand-made caches cover what ldconfig will not
 * write here (big-endian, an old part that disagrees with the new one) and damage.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseLdCache, readLdCache, type LdCacheEntry } from "../../src/builder/closure/ld-cache.js";
import { FormatError } from "../../src/model/errors.js";
import { tmpDir } from "../helpers/tmp.js";

const LDCONFIG = ["/usr/sbin/ldconfig", "/sbin/ldconfig"].find((p) => existsSync(p));

/** `ldconfig -p -C FILE` as "name => path" lines, hwcap entries marked. */
function ldconfigList(cache: string): string[] {
  const text = execFileSync(LDCONFIG!, ["-p", "-C", cache], { encoding: "utf8", env: { ...process.env, LC_ALL: "C" } });
  return text.split("\n").filter((l) => l.startsWith("\t")).map((l) => {
    const m = /^\t(\S+) \((.*)\) => (.*)$/.exec(l);
    assert.ok(m, `an ldconfig -p line: ${l}`);
    return `${m[1]} => ${m[3]}${m[2]!.includes("hwcap") ? " (hwcap)" : ""}`;
  });
}

function asList(entries: readonly LdCacheEntry[]): string[] {
  return entries.map((e) => `${e.name} => ${e.path}${e.hwcap !== 0n ? " (hwcap)" : ""}`);
}

function needLdconfig(t: TestContext): boolean {
  if (LDCONFIG !== undefined) return true;
  t.skip("glibc's ldconfig is not installed");
  return false;
}

test("the host's /etc/ld.so.cache reads as ldconfig -p lists it", (t) => {
  if (!needLdconfig(t)) return;
  if (!existsSync("/etc/ld.so.cache")) return t.skip("this host has no /etc/ld.so.cache");
  const entries = readLdCache();
  assert.ok(entries.length > 10);
  assert.deepEqual(asList(entries), ldconfigList("/etc/ld.so.cache"));
  if (process.arch === "x64") {
    const libc = entries.find((e) => e.name === "libc.so.6" && e.hwcap === 0n);
    assert.ok(libc, "libc.so.6 is listed");
    assert.equal(libc.flags, 0x0303, "ELF libc6, x86-64");
  }
});

for (const format of ["old", "compat", "new"] as const) {
  test(`a cache ldconfig writes in the "${format}" format reads as ldconfig -p lists it`, async (t) => {
    if (!needLdconfig(t)) return;
    const dir = await tmpDir(t);
    const libs = join(dir, "libs");
    mkdirSync(libs);
    // A real shared library in a directory of the test's own, so its entry is known to be there.
    const libc = readLdCache().find((e) => e.name === "libc.so.6" && e.hwcap === 0n);
    if (libc === undefined) return t.skip("the host's cache lists no libc.so.6 to copy");
    copyFileSync(libc.path, join(libs, "libc.so.6"));
    const conf = join(dir, "ld.so.conf");
    writeFileSync(conf, "");
    const cache = join(dir, `${format}.cache`);
    execFileSync(LDCONFIG!, ["-X", "-c", format, "-C", cache, "-f", conf, libs], { stdio: ["ignore", "ignore", "pipe"] });
    const bytes = readFileSync(cache);
    const magic = bytes.toString("latin1", 0, 11);
    assert.equal(magic, format === "new" ? "glibc-ld.so" : "ld.so-1.7.0", "ldconfig wrote the format asked for");
    const entries = parseLdCache(bytes, cache);
    assert.deepEqual(asList(entries), ldconfigList(cache));
    assert.ok(entries.some((e) => e.path === join(libs, "libc.so.6")), "the test's library is in it");
  });
}

interface MadeEntry { name: string; path: string; flags?: number; hwcap?: bigint }

/** The "glibc-ld.so.cache1.1" format by hand: 48-byte header, 24-byte entries, strings from the header's start. */
function newFormat(entries: readonly MadeEntry[], little: boolean, endianFlag = little ? 2 : 3): Buffer {
  const header = 48;
  const table = header + entries.length * 24;
  const strings: Buffer[] = [];
  let at = table;
  const offsets = entries.map((e) => {
    const key = at;
    strings.push(Buffer.from(`${e.name}\0`));
    at += e.name.length + 1;
    const value = at;
    strings.push(Buffer.from(`${e.path}\0`));
    at += e.path.length + 1;
    return { key, value };
  });
  const b = Buffer.alloc(at);
  b.write("glibc-ld.so.cache1.1", 0, "latin1");
  const u32 = (o: number, v: number) => (little ? b.writeUInt32LE(v, o) : b.writeUInt32BE(v, o));
  u32(20, entries.length);
  u32(24, at - table);
  b[28] = endianFlag;
  entries.forEach((e, i) => {
    const o = header + i * 24;
    u32(o, e.flags ?? 0x0303);
    u32(o + 4, offsets[i]!.key);
    u32(o + 8, offsets[i]!.value);
    if (little) b.writeBigUInt64LE(e.hwcap ?? 0n, o + 16);
    else b.writeBigUInt64BE(e.hwcap ?? 0n, o + 16);
  });
  Buffer.concat(strings).copy(b, table);
  return b;
}

/** The old "ld.so-1.7.0" format by hand (little-endian): 16-byte header, 12-byte entries, strings after them. */
function oldFormat(entries: readonly MadeEntry[]): Buffer {
  const table = 16 + entries.length * 12;
  const parts: Buffer[] = [];
  let at = 0;
  const head = Buffer.alloc(table);
  head.write("ld.so-1.7.0", 0, "latin1");
  head.writeUInt32LE(entries.length, 12);
  entries.forEach((e, i) => {
    head.writeInt32LE(e.flags ?? 0x0303, 16 + i * 12);
    head.writeUInt32LE(at, 16 + i * 12 + 4);
    parts.push(Buffer.from(`${e.name}\0`));
    at += e.name.length + 1;
    head.writeUInt32LE(at, 16 + i * 12 + 8);
    parts.push(Buffer.from(`${e.path}\0`));
    at += e.path.length + 1;
  });
  return Buffer.concat([head, ...parts]);
}

const MADE: MadeEntry[] = [
  { name: "libz.so.1", path: "/lib/s390x-linux-gnu/libz.so.1", flags: 0x0403 },
  { name: "libc.so.6", path: "/lib/s390x-linux-gnu/glibc-hwcaps/z15/libc.so.6", flags: 0x0403, hwcap: (1n << 62n) | 1n },
  { name: "libc.so.6", path: "/lib/s390x-linux-gnu/libc.so.6", flags: 0x0403 },
];

test("a hand-made big-endian cache of the new format reads entry for entry, hwcap entries included", () => {
  const entries = parseLdCache(newFormat(MADE, false), "be.cache");
  assert.deepEqual(entries, MADE.map((e) => ({ name: e.name, path: e.path, flags: e.flags, hwcap: e.hwcap ?? 0n })));
  // With the byte-order flag unset (a glibc before 2.32), the order is this machine's.
  const unset = parseLdCache(newFormat(MADE, true, 0), "unset.cache");
  assert.deepEqual(asList(unset), asList(entries));
});

test("an old-format cache followed by a new one is read from the new one, at either alignment", () => {
  const old = oldFormat([{ name: "libz.so.1", path: "/old/part/libz.so.1" }]);
  const fresh = newFormat([{ name: "libz.so.1", path: "/new/part/libz.so.1" }], true);
  // The new format starts at the next multiple of its alignment after the old entries, before their strings.
  const entriesEnd = 16 + 12;
  for (const align of [8, 4]) {
    const start = Math.ceil(entriesEnd / align) * align;
    const combined = Buffer.alloc(start + fresh.length);
    old.copy(combined, 0, 0, entriesEnd);
    fresh.copy(combined, start);
    assert.deepEqual(asList(parseLdCache(combined, "combined.cache")), ["libz.so.1 => /new/part/libz.so.1"], `aligned to ${align}`);
  }
  assert.deepEqual(asList(parseLdCache(old, "old.cache")), ["libz.so.1 => /old/part/libz.so.1"], "alone, the old part is read");
});

test("a damaged cache is one FormatError naming it, and a missing one is an empty cache", async (t) => {
  const named = (bytes: Buffer, pattern: RegExp) => assert.throws(() => parseLdCache(bytes, "/etc/x.cache"), (err: Error) => err instanceof FormatError && err.message.includes("/etc/x.cache") && pattern.test(err.message));
  named(Buffer.from("not a cache at all, just text"), /is not an ld\.so\.cache/);
  const good = newFormat(MADE, true);
  named(good.subarray(0, 60), /truncated: its header counts more entries/);
  named(good.subarray(0, 30), /truncated inside its header/);
  const badString = Buffer.from(good);
  badString.writeUInt32LE(0xffffff, 48 + 4);
  named(badString, /an entry's name lies outside the file/);
  named(oldFormat(MADE).subarray(0, 30), /truncated/);
  assert.deepEqual(readLdCache(join(await tmpDir(t), "none")), []);
});
