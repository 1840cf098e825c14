import { test } from "node:test";
import assert from "node:assert/strict";
import { buffer } from "node:stream/consumers";
import { pack as tarPack, type Header } from "tar-stream";
import { END_OF_ARCHIVE_BYTES, encodeHeader, paddingFor, writeUstarHeader, type TarHeaderFields, type TarTypeFlag } from "../../src/tar/encode.js";
import { numeric, checksumMatches } from "../../src/tar/header.js";

/**
 * gantry's tar encoder against tar-stream's packer, which wrote gantry's layers before it:
 * the same entries must give the same bytes, or every layer's digest would change.
 */

/** What tar-stream's packer takes. */
type TheirHeader = Partial<Header> & Pick<Header, "name"> & { pax?: Record<string, string> };

const TYPES: Array<[TarTypeFlag, Header["type"]]> = [
  ["0", "file"], ["1", "link"], ["2", "symlink"], ["3", "character-device"], ["4", "block-device"], ["5", "directory"], ["6", "fifo"],
];

/** A small deterministic generator, so a failure names a case that can be rerun. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

function pick<T>(next: () => number, choices: readonly T[]): T {
  return choices[Math.floor(next() * choices.length)]!;
}

const SEGMENTS = ["a", "usr", "node_modules", "x".repeat(40), "y".repeat(99), "z".repeat(154), "h\u00e9llo", "\u6f22\u5b57", "sp ace"];

function nameOf(next: () => number): string {
  const count = 1 + Math.floor(next() * 6);
  return Array.from({ length: count }, () => pick(next, SEGMENTS)).join("/");
}

/** One entry, as both encoders take it. */
function caseOf(next: () => number): { fields: TarHeaderFields; theirs: TheirHeader } {
  const [type, theirType] = pick(next, TYPES);
  const pax: Record<string, string> = {};
  const id = (key: "uid" | "gid"): number => {
    const value = pick(next, [0, 1000, 0o777777, 0o777777 + 1, 3_000_000]);
    if (value <= 0o777777) return value;
    pax[key] = String(value);
    return 0;
  };
  const owner = (key: "uname" | "gname"): string => {
    const value = pick(next, ["", "root", "u".repeat(31), "w".repeat(40)]);
    if (value.length <= 31) return value;
    pax[key] = value;
    return "";
  };
  const base = nameOf(next);
  const name = type === "5" ? `${base}/` : base;
  const linked = type === "1" || type === "2";
  const device = type === "3" || type === "4";
  const fields: TarHeaderFields = {
    name,
    type,
    mode: pick(next, [0, 0o644, 0o755, 0o4755, 0o7777]),
    uid: id("uid"),
    gid: id("gid"),
    uname: owner("uname"),
    gname: owner("gname"),
    size: type === "0" ? pick(next, [0, 1, 511, 512, 513, 5000]) : 0,
    mtime: pick(next, [0, 1, 1_700_000_000, 2 ** 31 - 1]),
    linkname: linked ? pick(next, ["", "target", "t".repeat(100), "t".repeat(101), "l\u00efnk", nameOf(next)]) : "",
    devmajor: device ? pick(next, [0, 8, 0o777777]) : 0,
    devminor: device ? pick(next, [0, 3, 255]) : 0,
  };
  if (Object.keys(pax).length > 0) fields.pax = pax;
  // The header as gantry gave it to tar-stream: the mode with its type bits (tar-stream
  // replaces a mode of 0), a Date for the time, devices only on devices.
  const theirs: TheirHeader = {
    name: fields.name,
    type: theirType,
    mode: 0o100000 | fields.mode,
    uid: fields.uid,
    gid: fields.gid,
    uname: fields.uname,
    gname: fields.gname,
    size: fields.size,
    mtime: new Date(fields.mtime * 1000),
  };
  if (linked) theirs.linkname = fields.linkname;
  if (device) {
    theirs.devmajor = fields.devmajor;
    theirs.devminor = fields.devminor;
  }
  if (fields.pax) theirs.pax = fields.pax;
  return { fields, theirs };
}

async function tarStreamBytes(header: TheirHeader, body: Buffer): Promise<Buffer> {
  const tar = tarPack();
  const done = buffer(tar);
  tar.entry(header, body);
  tar.finalize();
  return done;
}

test("every header comes out as tar-stream wrote it: ustar, prefixes, PAX records, long and non-ASCII names and targets", async () => {
  const next = random(20261130);
  let pax = 0;
  for (let i = 0; i < 600; i++) {
    const { fields, theirs } = caseOf(next);
    const body = Buffer.alloc(fields.size, 0x61);
    const header = encodeHeader(fields);
    const ours = Buffer.concat([header, body, paddingFor(fields.size), Buffer.alloc(END_OF_ARCHIVE_BYTES)]);
    assert.deepEqual(ours, await tarStreamBytes(theirs, body), `case ${i}: ${JSON.stringify(fields)}`);
    // Written in place, into a buffer holding other bytes, at an offset: the same block, or nothing for PAX.
    const target = Buffer.alloc(2048, 0xa5);
    const inPlace = writeUstarHeader(fields, target, 700);
    assert.equal(inPlace, header.length === 512, `case ${i}: in place exactly when no PAX header is needed`);
    if (inPlace) assert.deepEqual(target.subarray(700, 1212), header, `case ${i}: the same block in place`);
    else assert.ok(target.every((b) => b === 0xa5), `case ${i}: nothing written in place for PAX`);
    if (!inPlace) pax++;
  }
  assert.ok(pax >= 50 && 600 - pax >= 30, `both kinds of header were tried (${pax} of 600 with PAX)`);
});

test("a size past eleven octal digits is written in base-256, and the header still sums", () => {
  const size = 10 * 2 ** 30; // 10 GiB: 12 octal digits
  const block = encodeHeader({ name: "big", type: "0", mode: 0o644, uid: 0, gid: 0, uname: "", gname: "", size, mtime: 0, linkname: "", devmajor: 0, devminor: 0 });
  assert.equal(block.length, 512);
  assert.equal(block[124], 0x80);
  assert.equal(numeric(block, 124, 12), size);
  assert.ok(checksumMatches(block));
  assert.equal(paddingFor(size).length, 0);
  assert.equal(paddingFor(size + 1).length, 511);
});
