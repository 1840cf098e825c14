import { readFileSync } from "node:fs";
import { endianness } from "node:os";
import { FormatError } from "../../model/errors.js";
import { sourceUnreadable } from "../../layer/source-error.js";

/**
 * Reads /etc/ld.so.cache, the list ldconfig writes of the libraries in the directories
 * of /etc/ld.so.conf, which the loader consults after a program's RPATH/RUNPATH and
 * before its default directories. Two binary formats exist (glibc's sysdeps/generic/
 * dl-cache.h describes both):
 *
 * - "glibc-ld.so.cache1.1" (ldconfig's only format since glibc 2.32): a 48-byte header
 *   (magic and version, nlibs, len_strings, a byte-order flag, extension_offset), then
 *   nlibs entries of 24 bytes (flags, key, value, osversion, hwcap), strings addressed
 *   from the start of the header;
 * - "ld.so-1.7.0" (the old one, written alone or before the new one by `ldconfig -c
 *   compat`): nlibs entries of 12 bytes (flags, key, value) after a 16-byte header,
 *   strings addressed from the end of the entries. When the new format follows it (at
 *   the next multiple of the new header's alignment), the new one is read.
 *
 * Each entry maps a library name (the key, a soname) to the path the loader opens (the
 * value). Entries with a hwcap are glibc-hwcaps subdirectory variants
 * (x86-64-v3...), chosen by the CPU that runs the program; they are returned as they are
 * and left to the caller.
 */

/** One entry of the loader cache, as parseLdCache returns it. */
export interface LdCacheEntry {
  /** The library name the loader looks up (libc.so.6). */
  name: string;
  /** The file it opens (/lib/x86_64-linux-gnu/libc.so.6). */
  path: string;
  /** ldconfig's flags: the low byte is the kind (3 = ELF libc6), the next the ABI (0x0300 = x86-64). */
  flags: number;
  /** 0 for an ordinary entry; else the hwcap (or glibc-hwcaps subdirectory) it is for. */
  hwcap: bigint;
}

/** Where the host's loader cache is read from. */
export const LD_CACHE_PATH = "/etc/ld.so.cache";
const OLD_MAGIC = "ld.so-1.7.0";
const NEW_MAGIC = "glibc-ld.so.cache1.1";
const OLD_HEADER = 16;
const OLD_ENTRY = 12;
const NEW_HEADER = 48;
const NEW_ENTRY = 24;
const ENDIAN_LITTLE = 2;
const ENDIAN_BIG = 3;

/**
 * Parses an ld.so.cache of either format.
 * @param what names the file in errors.
 * @throws FormatError when it is neither format, or an entry points outside it.
 */
export function parseLdCache(buf: Buffer, what: string): LdCacheEntry[] {
  if (startsWith(buf, 0, NEW_MAGIC)) return parseNew(buf, 0, what);
  if (!startsWith(buf, 0, OLD_MAGIC)) throw new FormatError(`${what} is not an ld.so.cache (neither the "${NEW_MAGIC}" nor the "${OLD_MAGIC}" format)`);
  // The old format has no byte-order mark: it is the writer's, taken to be the one whose count fits the file.
  const little = buf.length >= OLD_HEADER && OLD_HEADER + buf.readUInt32LE(12) * OLD_ENTRY <= buf.length;
  const nlibs = buf.length >= OLD_HEADER ? (little ? buf.readUInt32LE(12) : buf.readUInt32BE(12)) : -1;
  const entriesEnd = OLD_HEADER + nlibs * OLD_ENTRY;
  if (nlibs < 0 || entriesEnd > buf.length) throw new FormatError(`${what} is truncated: its header counts more entries than the file holds`);
  // The new format's header holds a 64-bit field: aligned to 8 bytes, or 4 where uint64_t aligns to 4 (i386).
  for (const align of [8, 4]) {
    const at = Math.ceil(entriesEnd / align) * align;
    if (startsWith(buf, at, NEW_MAGIC)) return parseNew(buf, at, what);
  }
  const entries: LdCacheEntry[] = [];
  for (let i = 0; i < nlibs; i++) {
    const at = OLD_HEADER + i * OLD_ENTRY;
    const u32 = (o: number) => (little ? buf.readUInt32LE(at + o) : buf.readUInt32BE(at + o));
    const flags = little ? buf.readInt32LE(at) : buf.readInt32BE(at);
    entries.push({ name: stringAt(buf, entriesEnd, u32(4), what), path: stringAt(buf, entriesEnd, u32(8), what), flags, hwcap: 0n });
  }
  return entries;
}

function parseNew(buf: Buffer, start: number, what: string): LdCacheEntry[] {
  if (buf.length < start + NEW_HEADER) throw new FormatError(`${what} is truncated inside its header`);
  const endian = buf[start + 28];
  // "Unset" (0, from a glibc before 2.32) means the writer's order, which can only be this machine's.
  const little = endian === ENDIAN_LITTLE || (endian !== ENDIAN_BIG && endianness() === "LE");
  const u32 = (o: number) => (little ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const nlibs = u32(start + 20);
  if (start + NEW_HEADER + nlibs * NEW_ENTRY > buf.length) throw new FormatError(`${what} is truncated: its header counts more entries than the file holds`);
  const entries: LdCacheEntry[] = [];
  for (let i = 0; i < nlibs; i++) {
    const at = start + NEW_HEADER + i * NEW_ENTRY;
    entries.push({
      flags: little ? buf.readInt32LE(at) : buf.readInt32BE(at),
      name: stringAt(buf, start, u32(at + 4), what),
      path: stringAt(buf, start, u32(at + 8), what),
      hwcap: little ? buf.readBigUInt64LE(at + 16) : buf.readBigUInt64BE(at + 16),
    });
  }
  return entries;
}

function startsWith(buf: Buffer, at: number, magic: string): boolean {
  return buf.length >= at + magic.length && buf.toString("latin1", at, at + magic.length) === magic;
}

function stringAt(buf: Buffer, base: number, offset: number, what: string): string {
  const at = base + offset;
  const end = buf.indexOf(0, at);
  if (at >= buf.length || end === -1) throw new FormatError(`${what} is corrupt: an entry's name lies outside the file`);
  return buf.toString("utf8", at, end);
}

/**
 * The host's cache, or no entries when it does not exist (a system without ldconfig,
 * where the loader too goes straight to its default directories).
 */
export function readLdCache(path = LD_CACHE_PATH): LdCacheEntry[] {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw sourceUnreadable(path, err);
  }
  return parseLdCache(buf, path);
}
