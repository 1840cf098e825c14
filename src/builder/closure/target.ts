import { statSync } from "node:fs";
import { ELFCLASS64, ELFDATA2LSB, type ElfFile } from "./elf.js";

/**
 * What an ELF class, byte order and machine mean to a glibc loader on this host: the
 * Debian multiarch triplet of its library directories, the default directories it
 * searches, what `$LIB` and `$PLATFORM` expand to, and the Go architecture name that an
 * image config uses for it.
 *
 * The default directories are those of a glibc built for the target, and that differs by
 * distribution: Debian and Ubuntu use /lib/TRIPLET and /usr/lib/TRIPLET then /lib and
 * /usr/lib (`ld.so --help` lists them); Fedora and SUSE use /lib64 and /usr/lib64 for
 * 64-bit targets. The list here is the union, multiarch first: a directory the host's
 * loader would not search can only hold files of other distributions' layouts, and each
 * candidate is checked for the program's class and machine anyway.
 */

/** The host's glibc loader conventions for one ELF class, byte order and machine. */
export interface LoaderTarget {
  /** The multiarch triplet (x86_64-linux-gnu), or undefined for a machine not known here. */
  triplet: string | undefined;
  /** `$LIB`: lib/TRIPLET on a multiarch host, else lib64 (64-bit) or lib. */
  lib: string;
  /** `$PLATFORM`, the kernel's AT_PLATFORM, or undefined when it depends on the CPU (unknown here). */
  platform: string | undefined;
  /** Go's name for the architecture (amd64, arm64...), or undefined. */
  goArch: string | undefined;
  /** The directories searched after RPATH/RUNPATH and the cache, in order. */
  defaultDirs: string[];
  /** A human name for errors: "x86-64 (64-bit, little-endian)". */
  description: string;
}

const EM_386 = 3;
const EM_MIPS = 8;
const EM_PPC = 20;
const EM_PPC64 = 21;
const EM_S390 = 22;
const EM_ARM = 40;
const EM_X86_64 = 62;
const EM_AARCH64 = 183;
const EM_RISCV = 243;
const EM_LOONGARCH = 258;
/** e_flags of an ARM file built for the hard-float ABI. */
const EF_ARM_ABI_FLOAT_HARD = 0x400;

interface Known { triplet: string; platform?: string; goArch?: string; name: string }

/** The machine's triplet, AT_PLATFORM and Go name, by class and byte order. */
function known(elf: Pick<ElfFile, "elfClass" | "data" | "machine" | "flags">): Known | undefined {
  const is64 = elf.elfClass === ELFCLASS64;
  const little = elf.data === ELFDATA2LSB;
  switch (elf.machine) {
    case EM_X86_64:
      return is64 ? { triplet: "x86_64-linux-gnu", platform: "x86_64", goArch: "amd64", name: "x86-64" } : { triplet: "x86_64-linux-gnux32", platform: "x86_64", name: "x32" };
    case EM_386:
      return { triplet: "i386-linux-gnu", platform: "i686", goArch: "386", name: "i386" };
    case EM_AARCH64:
      return little ? { triplet: "aarch64-linux-gnu", platform: "aarch64", goArch: "arm64", name: "AArch64" } : { triplet: "aarch64_be-linux-gnu", platform: "aarch64_be", name: "AArch64" };
    case EM_ARM:
      return (elf.flags & EF_ARM_ABI_FLOAT_HARD) !== 0
        ? { triplet: "arm-linux-gnueabihf", goArch: "arm", name: "ARM" }
        : { triplet: "arm-linux-gnueabi", goArch: "arm", name: "ARM" };
    case EM_PPC64:
      return little ? { triplet: "powerpc64le-linux-gnu", goArch: "ppc64le", name: "PowerPC64" } : { triplet: "powerpc64-linux-gnu", goArch: "ppc64", name: "PowerPC64" };
    case EM_PPC:
      return { triplet: "powerpc-linux-gnu", name: "PowerPC" };
    case EM_S390:
      return is64 ? { triplet: "s390x-linux-gnu", platform: "s390x", goArch: "s390x", name: "s390x" } : undefined;
    case EM_RISCV:
      return is64 ? { triplet: "riscv64-linux-gnu", goArch: "riscv64", name: "RISC-V" } : undefined;
    case EM_LOONGARCH:
      return is64 ? { triplet: "loongarch64-linux-gnu", goArch: "loong64", name: "LoongArch" } : undefined;
    case EM_MIPS:
      return is64
        ? { triplet: little ? "mips64el-linux-gnuabi64" : "mips64-linux-gnuabi64", goArch: little ? "mips64le" : "mips64", name: "MIPS" }
        : { triplet: little ? "mipsel-linux-gnu" : "mips-linux-gnu", goArch: little ? "mipsle" : "mips", name: "MIPS" };
    default:
      return undefined;
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** The loader's view of `elf`'s target on this host. */
export function loaderTarget(elf: Pick<ElfFile, "elfClass" | "data" | "machine" | "flags">): LoaderTarget {
  const k = known(elf);
  const is64 = elf.elfClass === ELFCLASS64;
  const multiarch = k !== undefined && (isDirectory(`/usr/lib/${k.triplet}`) || isDirectory(`/lib/${k.triplet}`));
  const defaultDirs: string[] = [];
  if (k !== undefined) defaultDirs.push(`/lib/${k.triplet}`, `/usr/lib/${k.triplet}`);
  if (is64) defaultDirs.push("/lib64", "/usr/lib64");
  defaultDirs.push("/lib", "/usr/lib");
  const bits = is64 ? "64-bit" : "32-bit";
  const order = elf.data === ELFDATA2LSB ? "little-endian" : "big-endian";
  return {
    triplet: k?.triplet,
    lib: multiarch ? `lib/${k.triplet}` : is64 ? "lib64" : "lib",
    platform: k?.platform,
    goArch: k?.goArch,
    defaultDirs,
    description: `${k?.name ?? `machine ${elf.machine}`} (${bits}, ${order})`,
  };
}
