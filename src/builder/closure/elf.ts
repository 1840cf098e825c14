import { closeSync, fstatSync, readSync } from "node:fs";
import { FormatError } from "../../model/errors.js";
import { openSourceSync, sourceUnreadable } from "../../layer/source-error.js";

/**
 * Reads what the dynamic loader reads of an ELF file, and nothing more: the file header
 * (class, byte order, machine), the program headers (PT_INTERP names the loader, PT_LOAD
 * maps addresses to file offsets, PT_DYNAMIC locates the dynamic section) and, from the
 * dynamic section, DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH and DT_FLAGS_1 with their
 * strings in DT_STRTAB. Section headers are not used (a stripped file may have none; the
 * loader never looks at them), except section 0 when e_phnum overflows (PN_XNUM).
 * 32- and 64-bit files of either byte order are read; the file is never run.
 * Layout per the System V ABI, "Object Files" and "Program Loading and Dynamic Linking".
 */

/** e_ident[EI_CLASS]: a 32-bit file. */
export const ELFCLASS32 = 1;
/** e_ident[EI_CLASS]: a 64-bit file. */
export const ELFCLASS64 = 2;
/** e_ident[EI_DATA]: little-endian. */
export const ELFDATA2LSB = 1;
/** e_ident[EI_DATA]: big-endian. */
export const ELFDATA2MSB = 2;
/** p_type: a loadable segment, which maps file offsets to addresses. */
export const PT_LOAD = 1;
/** p_type: the dynamic section. */
export const PT_DYNAMIC = 2;
/** p_type: the path of the program interpreter (the dynamic loader). */
export const PT_INTERP = 3;
/** d_tag: the end of the dynamic section. */
export const DT_NULL = 0;
/** d_tag: the name of a needed library, as a DT_STRTAB offset. */
export const DT_NEEDED = 1;
/** d_tag: the address of the dynamic string table. */
export const DT_STRTAB = 5;
/** d_tag: the size of the dynamic string table, in bytes. */
export const DT_STRSZ = 10;
/** d_tag: the object's own library name, as a DT_STRTAB offset. */
export const DT_SONAME = 14;
/** d_tag: the search path tried before LD_LIBRARY_PATH, as a DT_STRTAB offset; ignored with a DT_RUNPATH. */
export const DT_RPATH = 15;
/** d_tag: the search path tried after LD_LIBRARY_PATH, as a DT_STRTAB offset. */
export const DT_RUNPATH = 29;
/** d_tag: the DF_1_* flags. */
export const DT_FLAGS_1 = 0x6ffffffb;
/** DT_FLAGS_1: the loader must not search /etc/ld.so.cache or the default directories for this object's needs. */
export const DF_1_NODEFLIB = 0x800;
const PN_XNUM = 0xffff;
/** No loader maps a dynamic section or string table this large; a value above it is a corrupt file. */
const MAX_TABLE_BYTES = 256 * 1024 * 1024;

/** Random access to a file's bytes (a real file, or a buffer in tests). */
export interface ByteSource {
  readonly size: number;
  /** Exactly `length` bytes at `offset`; the caller has checked the range. */
  read(offset: number, length: number): Buffer;
}

/** What an object's dynamic section tells the loader: the libraries it needs, its own name, where to search. */
export interface ElfDynamic {
  /** DT_NEEDED names, in order. */
  needed: string[];
  /** DT_SONAME, when present. */
  soname?: string;
  /** DT_RPATH, verbatim (colon-separated, tokens unexpanded). */
  rpath?: string;
  /** DT_RUNPATH, verbatim. */
  runpath?: string;
  /** DT_FLAGS_1 (DF_1_NODEFLIB...), 0 when absent. */
  flags1: number;
}

/** What parseElf reads of an ELF file: its class, byte order and machine, its loader, its dynamic section. */
export interface ElfFile {
  elfClass: typeof ELFCLASS32 | typeof ELFCLASS64;
  /** ELFDATA2LSB or ELFDATA2MSB. */
  data: typeof ELFDATA2LSB | typeof ELFDATA2MSB;
  /** e_ident[EI_OSABI] (0 System V, 3 Linux...). */
  osabi: number;
  /** ET_EXEC 2, ET_DYN 3... */
  type: number;
  /** EM_* (62 x86-64, 183 AArch64...). */
  machine: number;
  /** e_flags (the ARM float ABI, MIPS ABI...). */
  flags: number;
  /** PT_INTERP: the program interpreter (dynamic loader) path. */
  interpreter?: string;
  /** Absent for a file with no PT_DYNAMIC (a static program). */
  dynamic?: ElfDynamic;
}

/** Whether `head` starts with the ELF magic, \x7fELF. */
export function hasElfMagic(head: Buffer): boolean {
  return head.length >= 4 && head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46;
}

/** A ByteSource over bytes in memory. */
export function bufferSource(buf: Buffer): ByteSource {
  return { size: buf.length, read: (offset, length) => buf.subarray(offset, offset + length) };
}

/** A field reader over one file's byte order and class. */
class Fields {
  constructor(private readonly src: ByteSource, readonly is64: boolean, readonly little: boolean, private readonly what: string) {}

  bytes(offset: number, length: number, part: string): Buffer {
    if (!Number.isSafeInteger(offset) || offset < 0 || length < 0 || offset + length > this.src.size) {
      throw new FormatError(`the ELF file ${this.what} is truncated or corrupt: its ${part} lies outside the file`);
    }
    return this.src.read(offset, length);
  }

  u16(b: Buffer, at: number): number {
    return this.little ? b.readUInt16LE(at) : b.readUInt16BE(at);
  }

  u32(b: Buffer, at: number): number {
    return this.little ? b.readUInt32LE(at) : b.readUInt32BE(at);
  }

  /** An address, offset or size: 4 bytes in a 32-bit file, 8 in a 64-bit one, as a safe integer. */
  word(b: Buffer, at: number): number {
    if (!this.is64) return this.u32(b, at);
    const v = this.little ? b.readBigUInt64LE(at) : b.readBigUInt64BE(at);
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
  }

  /** A dynamic entry's d_tag: signed, of the class's width. */
  tag(b: Buffer, at: number): number {
    if (!this.is64) return this.little ? b.readInt32LE(at) : b.readInt32BE(at);
    const v = this.little ? b.readBigInt64LE(at) : b.readBigInt64BE(at);
    return Number(BigInt.asIntN(53, v));
  }
}

interface ProgramHeader { type: number; offset: number; vaddr: number; filesz: number }

/**
 * Parses an ELF file's header, program headers and dynamic section.
 * @param what names the file in errors.
 * @throws FormatError when the file is not ELF, or is truncated or corrupt.
 */
export function parseElf(src: ByteSource, what: string): ElfFile {
  const ident = src.size >= 16 ? src.read(0, 16) : Buffer.alloc(0);
  if (!hasElfMagic(ident)) throw new FormatError(`${what} is not an ELF file (no \\x7fELF magic)`);
  const elfClass = ident[4];
  const data = ident[5];
  if (elfClass !== ELFCLASS32 && elfClass !== ELFCLASS64) throw new FormatError(`the ELF file ${what} has an unknown class ${elfClass}`);
  if (data !== ELFDATA2LSB && data !== ELFDATA2MSB) throw new FormatError(`the ELF file ${what} has an unknown byte order ${data}`);
  const is64 = elfClass === ELFCLASS64;
  const f = new Fields(src, is64, data === ELFDATA2LSB, what);
  const header = f.bytes(0, is64 ? 64 : 52, "file header");
  const type = f.u16(header, 16);
  const machine = f.u16(header, 18);
  const phoff = f.word(header, is64 ? 32 : 28);
  const shoff = f.word(header, is64 ? 40 : 32);
  const flags = f.u32(header, is64 ? 48 : 36);
  const phentsize = f.u16(header, is64 ? 54 : 42);
  let phnum = f.u16(header, is64 ? 56 : 44);
  if (phnum === PN_XNUM) phnum = xnumCount(f, shoff, what);
  const minEntry = is64 ? 56 : 32;
  if (phnum > 0 && phentsize < minEntry) throw new FormatError(`the ELF file ${what} has program headers of ${phentsize} bytes, fewer than its class needs (${minEntry})`);

  const table = f.bytes(phoff, phnum * phentsize, "program header table");
  const headers: ProgramHeader[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = i * phentsize;
    headers.push(is64
      ? { type: f.u32(table, at), offset: f.word(table, at + 8), vaddr: f.word(table, at + 16), filesz: f.word(table, at + 32) }
      : { type: f.u32(table, at), offset: f.word(table, at + 4), vaddr: f.word(table, at + 8), filesz: f.word(table, at + 16) });
  }

  const out: ElfFile = { elfClass, data, osabi: ident[7] ?? 0, type, machine, flags };
  const interp = headers.find((h) => h.type === PT_INTERP);
  if (interp !== undefined) out.interpreter = cString(f.bytes(interp.offset, interp.filesz, "PT_INTERP segment"), 0);
  const dynamic = headers.find((h) => h.type === PT_DYNAMIC);
  if (dynamic !== undefined) out.dynamic = parseDynamic(f, dynamic, headers, what);
  return out;
}

/** With PN_XNUM, the real program header count is section header 0's sh_info. */
function xnumCount(f: Fields, shoff: number, what: string): number {
  if (shoff === 0) throw new FormatError(`the ELF file ${what} says its program headers overflow e_phnum but has no section header 0 to count them`);
  const sh0 = f.bytes(shoff, f.is64 ? 64 : 40, "section header 0");
  return f.u32(sh0, f.is64 ? 44 : 28);
}

function parseDynamic(f: Fields, seg: ProgramHeader, headers: readonly ProgramHeader[], what: string): ElfDynamic {
  if (seg.filesz > MAX_TABLE_BYTES) throw new FormatError(`the ELF file ${what} has a dynamic section of ${seg.filesz} bytes, which no loader would map`);
  const entrySize = f.is64 ? 16 : 8;
  const raw = f.bytes(seg.offset, seg.filesz - (seg.filesz % entrySize), "dynamic section");
  const strings: Array<{ tag: number; offset: number }> = [];
  let strtab: number | undefined;
  let strsz: number | undefined;
  let flags1 = 0;
  for (let at = 0; at + entrySize <= raw.length; at += entrySize) {
    const tag = f.tag(raw, at);
    const value = f.word(raw, at + entrySize / 2);
    if (tag === DT_NULL) break;
    if (tag === DT_NEEDED || tag === DT_SONAME || tag === DT_RPATH || tag === DT_RUNPATH) strings.push({ tag, offset: value });
    else if (tag === DT_STRTAB) strtab = value;
    else if (tag === DT_STRSZ) strsz = value;
    else if (tag === DT_FLAGS_1) flags1 = value;
  }
  const dyn: ElfDynamic = { needed: [], flags1 };
  if (strings.length === 0) return dyn;
  if (strtab === undefined || strsz === undefined) throw new FormatError(`the ELF file ${what} names libraries in its dynamic section but has no DT_STRTAB/DT_STRSZ string table`);
  if (strsz > MAX_TABLE_BYTES) throw new FormatError(`the ELF file ${what} has a dynamic string table of ${strsz} bytes, which no loader would map`);
  const table = f.bytes(fileOffsetOf(strtab, headers, what), strsz, "dynamic string table");
  for (const { tag, offset } of strings) {
    if (offset >= table.length) throw new FormatError(`the ELF file ${what} has a dynamic entry whose string lies past the end of DT_STRTAB`);
    const s = cString(table, offset);
    if (tag === DT_NEEDED) dyn.needed.push(s);
    else if (tag === DT_SONAME) dyn.soname = s;
    else if (tag === DT_RPATH) dyn.rpath = s;
    else dyn.runpath = s;
  }
  return dyn;
}

/** The file offset of a virtual address, through the PT_LOAD segment that maps it. */
function fileOffsetOf(vaddr: number, headers: readonly ProgramHeader[], what: string): number {
  const load = headers.find((h) => h.type === PT_LOAD && vaddr >= h.vaddr && vaddr < h.vaddr + h.filesz);
  if (load === undefined) throw new FormatError(`the ELF file ${what} has a DT_STRTAB address 0x${vaddr.toString(16)} that no PT_LOAD segment maps`);
  return vaddr - load.vaddr + load.offset;
}

function cString(b: Buffer, at: number): string {
  const end = b.indexOf(0, at);
  return b.toString("utf8", at, end === -1 ? b.length : end);
}

/** Reads a host file's ELF headers with positioned reads (a 100 MB program is not read whole). */
export function readElfFile(hostPath: string): ElfFile {
  const fd = openSourceSync(hostPath);
  try {
    const size = fstatSync(fd).size;
    const src: ByteSource = {
      size,
      read(offset, length) {
        const buf = Buffer.alloc(length);
        let got = 0;
        while (got < length) {
          const n = readSync(fd, buf, got, length - got, offset + got);
          if (n === 0) throw new FormatError(`the ELF file ${hostPath} shrank while it was read`);
          got += n;
        }
        return buf;
      },
    };
    return parseElf(src, hostPath);
  } catch (err) {
    if (err instanceof FormatError) throw err;
    throw sourceUnreadable(hostPath, err);
  } finally {
    closeSync(fd);
  }
}
