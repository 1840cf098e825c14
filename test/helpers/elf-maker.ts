/**
 * Hand-made ELF files for parser tests: a file header, program headers (one PT_LOAD over
 * the whole file, PT_INTERP when asked, PT_DYNAMIC), the interpreter string, a dynamic
 * string table and a dynamic section, in either class and byte order. Written from the
 * System V ABI's layouts, and checked against binutils' readelf by the tests that use it,
 * so the parser is not only checked against its own reading of the spec.
 */

export interface ElfRecipe {
  is64: boolean;
  little: boolean;
  /** EM_*: 62 x86-64, 8 MIPS, 20 PowerPC, 22 s390, 43 SPARC v9... */
  machine: number;
  /** ET_DYN unless given. */
  type?: number;
  interpreter?: string;
  needed?: string[];
  soname?: string;
  rpath?: string;
  runpath?: string;
  flags1?: number;
  /** Count the program headers in section header 0 (e_phnum = PN_XNUM), as files with 65535+ do. */
  xnum?: boolean;
}

const VADDR = 0x10000;

export function makeElf(r: ElfRecipe): Buffer {
  const word = r.is64 ? 8 : 4;
  const ehsize = r.is64 ? 64 : 52;
  const phentsize = r.is64 ? 56 : 32;
  const shentsize = r.is64 ? 64 : 40;
  const dynEntry = word * 2;

  // Strings: offset 0 is the empty string, as in every real table.
  const strings: Buffer[] = [Buffer.from([0])];
  let strLength = 1;
  const str = (s: string): number => {
    const at = strLength;
    const b = Buffer.from(`${s}\0`, "utf8");
    strings.push(b);
    strLength += b.length;
    return at;
  };
  const dyn: Array<[number, number]> = [];
  for (const n of r.needed ?? []) dyn.push([1, str(n)]);
  if (r.soname !== undefined) dyn.push([14, str(r.soname)]);
  if (r.rpath !== undefined) dyn.push([15, str(r.rpath)]);
  if (r.runpath !== undefined) dyn.push([29, str(r.runpath)]);
  if (r.flags1 !== undefined) dyn.push([0x6ffffffb, r.flags1]);
  const strtab = Buffer.concat(strings);

  const phnum = r.interpreter !== undefined ? 3 : 2;
  const phoff = ehsize;
  const interpOff = phoff + phnum * phentsize;
  const interp = r.interpreter !== undefined ? Buffer.from(`${r.interpreter}\0`) : Buffer.alloc(0);
  const strOff = interpOff + interp.length;
  const dynOff = align(strOff + strtab.length, word);
  dyn.push([5, VADDR + strOff], [10, strtab.length], [0, 0]);
  const shOff = align(dynOff + dyn.length * dynEntry, word);
  const size = shOff + (r.xnum ? shentsize : 0);
  const b = Buffer.alloc(size);

  const u16 = (at: number, v: number) => (r.little ? b.writeUInt16LE(v, at) : b.writeUInt16BE(v, at));
  const u32 = (at: number, v: number) => (r.little ? b.writeUInt32LE(v, at) : b.writeUInt32BE(v, at));
  const w = (at: number, v: number) => {
    if (!r.is64) return u32(at, v);
    return r.little ? b.writeBigUInt64LE(BigInt(v), at) : b.writeBigUInt64BE(BigInt(v), at);
  };

  b.set([0x7f, 0x45, 0x4c, 0x46, r.is64 ? 2 : 1, r.little ? 1 : 2, 1, 0], 0);
  u16(16, r.type ?? 3);
  u16(18, r.machine);
  u32(20, 1);
  w(24, 0); // e_entry
  w(r.is64 ? 32 : 28, phoff);
  w(r.is64 ? 40 : 32, r.xnum ? shOff : 0);
  u32(r.is64 ? 48 : 36, 0); // e_flags
  u16(r.is64 ? 52 : 40, ehsize);
  u16(r.is64 ? 54 : 42, phentsize);
  u16(r.is64 ? 56 : 44, r.xnum ? 0xffff : phnum);
  u16(r.is64 ? 58 : 46, r.xnum ? shentsize : 0);
  u16(r.is64 ? 60 : 48, r.xnum ? 1 : 0);

  const ph = (i: number, type: number, offset: number, filesz: number, flags: number) => {
    const at = phoff + i * phentsize;
    u32(at, type);
    if (r.is64) {
      u32(at + 4, flags);
      w(at + 8, offset); w(at + 16, VADDR + offset); w(at + 24, VADDR + offset);
      w(at + 32, filesz); w(at + 40, filesz); w(at + 48, type === 1 ? 0x1000 : word);
    } else {
      w(at + 4, offset); w(at + 8, VADDR + offset); w(at + 12, VADDR + offset);
      w(at + 16, filesz); w(at + 20, filesz); u32(at + 24, flags); w(at + 28, type === 1 ? 0x1000 : word);
    }
  };
  let i = 0;
  if (r.interpreter !== undefined) ph(i++, 3, interpOff, interp.length, 4);
  ph(i++, 1, 0, size, 6);
  ph(i++, 2, dynOff, dyn.length * dynEntry, 6);

  interp.copy(b, interpOff);
  strtab.copy(b, strOff);
  dyn.forEach(([tag, value], n) => {
    w(dynOff + n * dynEntry, tag);
    w(dynOff + n * dynEntry + word, value);
  });
  if (r.xnum) u32(shOff + (r.is64 ? 44 : 28), phnum); // sh_info of section header 0
  return b;
}

function align(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}
