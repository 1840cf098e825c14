import { statSync } from "node:fs";
import { posix } from "node:path";
import { GantryError, SourceUnreadableError, SpecError } from "../../model/errors.js";
import { DF_1_NODEFLIB, hasElfMagic, readElfFile, type ElfFile } from "./elf.js";
import { LD_CACHE_PATH, readLdCache, type LdCacheEntry } from "./ld-cache.js";
import { linkChain, type LinkChain } from "./link-chain.js";
import { parseShebang, readHead } from "./script.js";
import { expandSearchPath } from "./search-path.js";
import { loaderTarget, type LoaderTarget } from "./target.js";

/**
 * The closure of host programs: each program, its dynamic loader (PT_INTERP) and every
 * shared library the loader would map for it, transitively; for a script, its `#!`
 * interpreter and that interpreter's closure. Nothing is run (`ldd` may run the program);
 * the ELF files are read and the loader's search is redone here, as glibc's ld.so does it
 * for each DT_NEEDED name of an object:
 *
 * 1. a name with a slash is a path;
 * 2. a name already loaded (by a DT_NEEDED name or a DT_SONAME, the loader's own among
 *    them) is not searched again, and a file already loaded by another path is not
 *    loaded twice;
 * 3. unless the object has a DT_RUNPATH: the DT_RPATH of the object, of the object that
 *    loaded it, and so on up to the program, then the program's own;
 * 4. (LD_LIBRARY_PATH: not used. The image's content must not depend on the environment
 *    of whoever runs the build; put it in config.Env if the program needs it.)
 * 5. the object's DT_RUNPATH;
 * 6. unless the object is DF_1_NODEFLIB: /etc/ld.so.cache, then the default directories.
 *
 * A candidate counts only if it is a regular file of the program's ELF class, byte order
 * and machine, as the loader skips others. `$ORIGIN` is the directory of the program's
 * real path (the loader asks /proc/self/exe) or, for a library, of the path it was opened
 * by. glibc-hwcaps subdirectories, the legacy hwcap ones (tls, x86_64) and cache entries
 * for them are not searched: which one the loader picks depends on the CPU that runs the
 * image, and the baseline library they stand in for is always there too.
 *
 * Every path is taken with its symbolic links (link-chain.ts), so that the path the
 * loader opens resolves inside the image as on the host.
 */

/** What resolveClosure consults besides the programs' own search paths and the loader's default directories. */
export interface ClosureOptions {
  /** The ld.so.cache entries to consult (default: the host's /etc/ld.so.cache). */
  ldCache?: readonly LdCacheEntry[];
}

/** An ELF program of a closure, for checking it against the image's platform. */
export interface ClosureProgram {
  path: string;
  /** Go's name for its architecture, when known. */
  goArch: string | undefined;
  /** "x86-64 (64-bit, little-endian)". */
  description: string;
}

/** What resolveClosure found: the host paths to copy, the ELF programs among them, and notes for the user. */
export interface Closure {
  /** Host paths to copy at the same image paths, each a regular file or a symbolic link, sorted. */
  paths: string[];
  /** The ELF programs (a script's interpreter stands for the script). */
  programs: ClosureProgram[];
  /** What the build should tell the user: search path elements left out, libraries the image's loader will not find alone. */
  notes: string[];
}

/** The kernel runs a script's interpreter's interpreter, up to this depth (BINPRM_MAX_RECURSION). */
const MAX_SCRIPT_DEPTH = 4;

interface LoadedObject {
  /** The path the loader opened it by (its `$ORIGIN` is this path's directory). */
  openedAs: string;
  real: string;
  elf: ElfFile;
  origin: string;
  /** The object whose DT_NEEDED brought it in; undefined for the program. */
  loader: LoadedObject | undefined;
}

/** One process's view: the program and what its loader has mapped so far. */
interface Process {
  main: LoadedObject;
  target: LoaderTarget;
  byName: Map<string, LoadedObject>;
  byReal: Map<string, LoadedObject>;
}

/**
 * @param programs absolute host paths.
 * @throws SourceUnreadableError naming a program, loader or library that cannot be found or
 *         read (a missing library names the object that needs it); SpecError for a program
 *         that is neither ELF nor a script; FormatError for a corrupt ELF file.
 */
export function resolveClosure(programs: readonly string[], opts: ClosureOptions = {}): Closure {
  return new ClosureWalk(opts.ldCache ?? readLdCache()).run(programs);
}

class ClosureWalk {
  private readonly paths = new Set<string>();
  private readonly programs: ClosureProgram[] = [];
  private readonly notes = new Set<string>();
  private readonly elfs = new Map<string, ElfFile | undefined>();

  constructor(private readonly ldCache: readonly LdCacheEntry[]) {}

  run(programs: readonly string[]): Closure {
    for (const program of programs) {
      if (!program.startsWith("/")) throw new SpecError(`the closureOf program ${JSON.stringify(program)} is not an absolute host path; resolve it against the spec file first`);
      this.program(program, "the closureOf program", 0);
    }
    return { paths: [...this.paths].sort(), programs: this.programs, notes: [...this.notes] };
  }

  /** Adds a path's links and real file; returns the chain. */
  private take(path: string, what: string): LinkChain {
    const chain = linkChain(path, what);
    for (const link of chain.links) this.paths.add(link);
    this.paths.add(chain.real);
    return chain;
  }

  private program(path: string, what: string, depth: number): void {
    const chain = this.take(path, what);
    if (!isRegularFile(chain.real)) throw new SpecError(`${what} ${path} is not a regular file`);
    const head = readHead(chain.real);
    if (hasElfMagic(head)) {
      this.elfProgram(path, chain.real);
      return;
    }
    const shebang = parseShebang(head);
    if (shebang === undefined) throw new SpecError(`${what} ${path} is neither an ELF program nor a script starting with "#!"; name a program or a script`);
    if (!shebang.interpreter.startsWith("/")) throw new SpecError(`the script ${path} names the interpreter ${JSON.stringify(shebang.interpreter)}, which is not an absolute path; write its full path after "#!"`);
    if (depth + 1 >= MAX_SCRIPT_DEPTH) throw new SpecError(`the script ${path} runs through more than ${MAX_SCRIPT_DEPTH} nested interpreters, more than the kernel follows`);
    this.program(shebang.interpreter, `the interpreter of ${path}`, depth + 1);
  }

  private elfProgram(path: string, real: string): void {
    const elf = this.elf(real)!;
    const target = loaderTarget(elf);
    this.programs.push({ path, goArch: target.goArch, description: target.description });
    const main: LoadedObject = { openedAs: path, real, elf, origin: posix.dirname(real), loader: undefined };
    const proc: Process = { main, target, byName: new Map(), byReal: new Map([[real, main]]) };
    if (elf.interpreter !== undefined) this.interpreter(proc, elf.interpreter);
    // Breadth first, as the loader maps a program's dependencies: the order decides which
    // object a repeated name resolves to.
    const queue: LoadedObject[] = [main];
    for (let obj = queue.shift(); obj !== undefined; obj = queue.shift()) {
      for (const name of obj.elf.dynamic?.needed ?? []) {
        if (proc.byName.has(name)) continue;
        const found = this.search(name, obj, proc);
        const same = proc.byReal.get(found.real);
        if (same !== undefined) {
          proc.byName.set(name, same);
          continue;
        }
        this.take(found.openedAs, `the library ${name} of ${main.openedAs}`);
        const lib: LoadedObject = { ...found, origin: posix.dirname(found.openedAs), loader: obj };
        this.register(proc, name, lib);
        queue.push(lib);
      }
    }
  }

  private interpreter(proc: Process, path: string): void {
    const what = `the loader (PT_INTERP) of ${proc.main.openedAs}`;
    const chain = this.take(path, what);
    const elf = this.elf(chain.real);
    if (elf === undefined || !sameTarget(elf, proc.main.elf)) {
      throw new SourceUnreadableError(`${what}, ${path}, is not an ELF file for ${proc.target.description}`);
    }
    const loader: LoadedObject = { openedAs: path, real: chain.real, elf, origin: posix.dirname(path), loader: undefined };
    this.register(proc, path, loader);
  }

  private register(proc: Process, name: string, obj: LoadedObject): void {
    proc.byName.set(name, obj);
    const soname = obj.elf.dynamic?.soname;
    if (soname !== undefined && !proc.byName.has(soname)) proc.byName.set(soname, obj);
    proc.byReal.set(obj.real, obj);
  }

  /** Where the loader finds `name` for `obj`, by the rules in this file's header. */
  private search(name: string, obj: LoadedObject, proc: Process): Omit<LoadedObject, "origin" | "loader"> {
    const { main, target } = proc;
    const needer = obj === main ? main.openedAs : `${obj.openedAs} (loaded for ${main.openedAs})`;
    if (name.includes("/")) {
      if (!name.startsWith("/")) throw new SpecError(`${needer} needs ${name} by a relative path, which the loader takes from the working directory when it runs; gantry cannot tell what that will be`);
      const hit = this.candidate(name, main.elf);
      if (hit === undefined) throw new SourceUnreadableError(`the library ${name} that ${needer} needs is not an ELF file for ${target.description}`);
      return hit;
    }
    const dirs: string[] = [];
    const runpath = obj.elf.dynamic?.runpath;
    if (runpath === undefined) {
      let passedMain = false;
      for (let l: LoadedObject | undefined = obj; l !== undefined; l = l.loader) {
        dirs.push(...this.pathList(l, "rpath", target));
        passedMain ||= l === main;
      }
      if (!passedMain) dirs.push(...this.pathList(main, "rpath", target));
    } else {
      dirs.push(...this.pathList(obj, "runpath", target));
    }
    for (const dir of dirs) {
      const hit = this.candidate(`${dir.replace(/\/+$/, "")}/${name}`, main.elf);
      if (hit !== undefined) return hit;
    }
    const nodeflib = ((obj.elf.dynamic?.flags1 ?? 0) & DF_1_NODEFLIB) !== 0;
    if (!nodeflib) {
      for (const entry of this.ldCache) {
        if (entry.name !== name || entry.hwcap !== 0n) continue;
        const hit = this.candidate(entry.path, main.elf);
        if (hit === undefined) continue;
        const dir = posix.dirname(entry.path);
        if (!target.defaultDirs.includes(dir) && !dirs.includes(dir)) {
          this.notes.add(`${name} (for ${main.openedAs}) is found through ${LD_CACHE_PATH} in ${dir}, which the loader in the image will not search (the image has no ld.so.cache): add LD_LIBRARY_PATH=${dir} to config.Env`);
        }
        return hit;
      }
      for (const dir of target.defaultDirs) {
        const hit = this.candidate(`${dir}/${name}`, main.elf);
        if (hit !== undefined) return hit;
      }
    }
    if (nodeflib) {
      const only = dirs.length > 0 ? dirs.join(", ") : "its RPATH or RUNPATH, and it has neither";
      throw new SourceUnreadableError(`the library ${name} that ${needer} needs is not found: ${obj.openedAs} is marked DF_1_NODEFLIB, so the loader looks only in ${only}`);
    }
    throw new SourceUnreadableError(`the library ${name} that ${needer} needs is not found where the loader looks (${[...dirs, LD_CACHE_PATH, ...target.defaultDirs].join(", ")}); install it, or give the program a RUNPATH to where it is`);
  }

  /** An object's RPATH (ignored when it has a RUNPATH, as glibc drops it) or RUNPATH, expanded. */
  private pathList(obj: LoadedObject, which: "rpath" | "runpath", target: LoaderTarget): string[] {
    const dyn = obj.elf.dynamic;
    const list = which === "rpath" ? (dyn?.runpath === undefined ? dyn?.rpath : undefined) : dyn?.runpath;
    if (list === undefined) return [];
    const expanded = expandSearchPath(list, obj.origin, target);
    for (const s of expanded.skipped) this.notes.add(`the ${which.toUpperCase()} of ${obj.openedAs} has ${s}, which gantry leaves out`);
    return expanded.dirs;
  }

  /** The file at `path` if it is one the loader would take for `like`'s process. */
  private candidate(path: string, like: ElfFile): Omit<LoadedObject, "origin" | "loader"> | undefined {
    if (!isRegularFile(path)) return undefined;
    let chain: LinkChain;
    try {
      chain = linkChain(path, "the library");
    } catch (err) {
      if (err instanceof GantryError) return undefined;
      throw err;
    }
    let elf: ElfFile | undefined;
    try {
      elf = this.elf(chain.real);
    } catch (err) {
      // A file the loader cannot verify is passed over, as a file of another machine is.
      if (err instanceof GantryError) return undefined;
      throw err;
    }
    if (elf === undefined || !sameTarget(elf, like)) return undefined;
    return { openedAs: path, real: chain.real, elf };
  }

  /** The ELF headers of a real path (read once), or undefined when it is not ELF. */
  private elf(real: string): ElfFile | undefined {
    if (!this.elfs.has(real)) this.elfs.set(real, hasElfMagic(readHead(real)) ? readElfFile(real) : undefined);
    return this.elfs.get(real);
  }
}

function sameTarget(a: ElfFile, b: ElfFile): boolean {
  return a.elfClass === b.elfClass && a.data === b.data && a.machine === b.machine;
}

function isRegularFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
