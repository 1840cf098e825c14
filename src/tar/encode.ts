import { BLOCK } from "./header.js";

/**
 * Tar header blocks as gantry writes them: ustar, with a PAX extended header before the
 * entry when a field does not fit. The bytes are those tar-stream's packer wrote for
 * gantry's layers before this encoder replaced it (test/unit/tar-encode.test.ts holds the
 * two side by side), so layers keep their digests:
 *
 * - numeric fields are octal with 6 digits (8-byte fields) or 11 (12-byte fields), a space
 *   and, in the 8-byte fields, a NUL; a size past 11 octal digits is base-256;
 * - a name over 100 bytes is split at a "/" into prefix and name; a name that cannot be
 *   split, a non-ASCII name, a link target over 100 bytes, or any `pax` record given, puts
 *   the entry behind a PAX header holding path, linkpath and those records, and then the
 *   ustar header names "PaxHeader" (its link target too, when it has one).
 */

/** The type flags gantry writes. */
export type TarTypeFlag = "0" | "1" | "2" | "3" | "4" | "5" | "6";

/** An entry's header fields, ready to encode: names with their final "/" for directories. */
export interface TarHeaderFields {
  name: string;
  type: TarTypeFlag;
  /** Permission bits; the type bits are not written. */
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  size: number;
  /** Whole seconds (the field holds a 32-bit value). */
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** PAX records to write besides path and linkpath; when given, the PAX header is written. */
  pax?: Record<string, string> | undefined;
}

/** Largest value of the 6-digit octal fields (mode, ids, device numbers). */
export const MAX_SHORT_OCTAL = 0o777777;
/** Largest size written in octal; above it the size field is base-256. */
const MAX_OCTAL_SIZE = 0o77777777777;
const USTAR_NAME = 100;
const USTAR_PREFIX = 155;
const PAX_TYPE = "x";
/** The name and link target of the ustar header that follows a PAX header. */
const PAX_NAME = "PaxHeader";

/** How many zeros pad a body of `size` bytes to whole blocks. */
export function paddingLength(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** The zeros that pad a body of `size` bytes to whole blocks. */
export function paddingFor(size: number): Buffer {
  return Buffer.alloc(paddingLength(size));
}

/** The size of the two zero blocks that end an archive. */
export const END_OF_ARCHIVE_BYTES = 2 * BLOCK;

/** The header block(s) of one entry: one ustar block, or a PAX header, its records padded, and the ustar block. */
export function encodeHeader(fields: TarHeaderFields): Buffer {
  const block = Buffer.alloc(BLOCK);
  if (writeUstarHeader(fields, block, 0)) return block;
  const records = paxRecords(fields);
  const linkname = fields.linkname === "" ? "" : PAX_NAME;
  const paxHeader = ustarBlock({ ...fields, type: PAX_TYPE, size: records.length, linkname }, PAX_NAME, "");
  const entryHeader = ustarBlock({ ...fields, linkname }, PAX_NAME, "");
  return Buffer.concat([paxHeader, records, paddingFor(records.length), entryHeader]);
}

/**
 * Writes the entry's ustar header block into `target` at `at` (BLOCK bytes from there),
 * when the entry needs no PAX header; returns false, writing nothing, when it does.
 * A tar writer fills its buffer in place this way, with no block of its own per entry.
 */
export function writeUstarHeader(fields: TarHeaderFields, target: Buffer, at: number): boolean {
  if (fields.pax !== undefined) return false;
  const split = splitName(fields.name);
  if (split === undefined || Buffer.byteLength(fields.linkname) > USTAR_NAME) return false;
  fillUstar(fields, split.name, split.prefix, target, at);
  return true;
}

/** ustar's name and prefix for `name`, or undefined when it needs PAX (non-ASCII, or no split fits). */
function splitName(full: string): { name: string; prefix: string } | undefined {
  // A non-ASCII name always goes to PAX, whatever its length.
  if (!ASCII.test(full)) return undefined;
  if (full.length <= USTAR_NAME) return { name: full, prefix: "" };
  let name = full;
  let prefix = "";
  // Leading components move to the prefix one at a time until the rest fits.
  while (name.length > USTAR_NAME) {
    const slash = name.indexOf("/");
    if (slash === -1) return undefined;
    prefix = prefix === "" ? name.slice(0, slash) : `${prefix}/${name.slice(0, slash)}`;
    name = name.slice(slash + 1);
  }
  return prefix.length > USTAR_PREFIX ? undefined : { name, prefix };
}

const ASCII = /^[\x00-\x7f]*$/;
const USTAR_MAGIC = Buffer.from("ustar\x0000", "latin1");

function ustarBlock(fields: Omit<TarHeaderFields, "type"> & { type: string }, name: string, prefix: string): Buffer {
  const block = Buffer.alloc(BLOCK);
  fillUstar(fields, name, prefix, block, 0);
  return block;
}

/** The ustar block of `fields` under `name` and `prefix` (both ASCII), at `at` in `target`. */
function fillUstar(fields: Omit<TarHeaderFields, "type"> & { type: string }, name: string, prefix: string, target: Buffer, at: number): void {
  target.fill(0, at, at + BLOCK);
  target.write(name, at, "latin1");
  putOctal(target, at + 100, fields.mode & 0o7777, 6);
  putOctal(target, at + 108, fields.uid, 6);
  putOctal(target, at + 116, fields.gid, 6);
  if (fields.size > MAX_OCTAL_SIZE) base256(fields.size, target, at + 124);
  else putOctal(target, at + 124, fields.size, 11);
  putOctal(target, at + 136, fields.mtime, 11);
  target[at + 156] = fields.type.charCodeAt(0);
  if (fields.linkname !== "") target.write(fields.linkname, at + 157, "utf8");
  USTAR_MAGIC.copy(target, at + 257);
  if (fields.uname !== "") target.write(fields.uname, at + 265, "utf8");
  if (fields.gname !== "") target.write(fields.gname, at + 297, "utf8");
  putOctal(target, at + 329, fields.devmajor, 6);
  putOctal(target, at + 337, fields.devminor, 6);
  if (prefix !== "") target.write(prefix, at + 345, "latin1");
  putOctal(target, at + 148, checksum(target, at), 6);
}

/** `digits` octal digits and a space; a value too large for them is written as all sevens. */
function putOctal(target: Buffer, at: number, value: number, digits: number): void {
  if (value < 0 || !Number.isInteger(value)) {
    // Never for gantry's entries; written as the text tar-stream made of it.
    target.write(octalText(value, digits), at, "latin1");
    return;
  }
  if (value >= 8 ** digits) {
    target.fill(0x37, at, at + digits);
  } else {
    let rest = value;
    for (let i = digits - 1; i >= 0; i--) {
      target[at + i] = 0x30 + (rest % 8);
      rest = Math.floor(rest / 8);
    }
  }
  target[at + digits] = 0x20;
}

function octalText(value: number, digits: number): string {
  const text = value.toString(8);
  if (text.length > digits) return `${"7".repeat(digits)} `;
  return `${text.padStart(digits, "0")} `;
}

/** GNU's base-256 number: a 0x80 marker byte, then the value big-endian in the field's other 11 bytes. */
function base256(value: number, block: Buffer, at: number): void {
  block[at] = 0x80;
  let rest = value;
  for (let i = 11; i > 0; i--) {
    block[at + i] = rest % 256;
    rest = Math.floor(rest / 256);
  }
}

/** The header's checksum: its bytes summed, the checksum field counted as eight spaces. */
function checksum(block: Buffer, at: number): number {
  let sum = 8 * 0x20;
  for (let i = at; i < at + 148; i++) sum += block[i]!;
  for (let i = at + 156; i < at + BLOCK; i++) sum += block[i]!;
  return sum;
}

/** PAX records: path, linkpath when there is a target, then the extra records in their order. */
function paxRecords(fields: TarHeaderFields): Buffer {
  let text = "";
  if (fields.name !== "") text += paxRecord("path", fields.name);
  if (fields.linkname !== "") text += paxRecord("linkpath", fields.linkname);
  for (const [key, value] of Object.entries(fields.pax ?? {})) text += paxRecord(key, value);
  return Buffer.from(text, "utf8");
}

/** "LEN key=value\n", where LEN counts the whole record, its own digits included. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bytes = Buffer.byteLength(body);
  let digits = String(bytes).length;
  if (bytes + digits >= 10 ** digits) digits++;
  return `${bytes + digits}${body}`;
}
