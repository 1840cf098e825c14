import type { LoaderTarget } from "./target.js";

/**
 * A DT_RPATH or DT_RUNPATH value turned into the directories the loader searches: split
 * at colons, with the dynamic string tokens expanded as glibc's ld.so expands them
 * (`$ORIGIN`/`${ORIGIN}`: the directory of the object that holds the path list;
 * `$LIB`: lib, lib64 or lib/TRIPLET; `$PLATFORM`: the CPU's AT_PLATFORM). A bare token
 * ends at a slash or the element's end; anything else (`$ORIGINX`) stays as written, as
 * glibc leaves it.
 *
 * What cannot be known at build time is left out and said: a relative directory or an
 * empty element (the loader takes them from the working directory of the running
 * program), and `$PLATFORM` for a machine whose AT_PLATFORM depends on the CPU.
 */

/** What expandSearchPath gives: the directories the loader searches, in order, and the elements left out. */
export interface SearchPath {
  dirs: string[];
  /** Elements left out, each with why, for the build's notes. */
  skipped: string[];
}

/**
 * The directories `list` (a DT_RPATH or DT_RUNPATH) names for an object whose `$ORIGIN` is `origin`,
 * as described above; the elements that cannot be known at build time are in `skipped`.
 */
export function expandSearchPath(list: string, origin: string, target: LoaderTarget): SearchPath {
  const out: SearchPath = { dirs: [], skipped: [] };
  for (const element of list.split(":")) {
    if (element === "") {
      out.skipped.push("an empty element (the loader takes it as the working directory of the running program)");
      continue;
    }
    let unknown: string | undefined;
    const dir = element.replace(/\$(?:\{(ORIGIN|LIB|PLATFORM)\}|(ORIGIN|LIB|PLATFORM)(?=\/|$))/g, (_m, braced: string | undefined, bare: string | undefined) => {
      const token = braced ?? bare;
      if (token === "ORIGIN") return origin;
      if (token === "LIB") return target.lib;
      if (target.platform === undefined) unknown = "$PLATFORM, which depends on the CPU that runs it";
      return target.platform ?? "";
    });
    if (unknown !== undefined) out.skipped.push(`${element} (it uses ${unknown})`);
    else if (!dir.startsWith("/")) out.skipped.push(`${element} (a relative directory, taken from the working directory when the program runs)`);
    else out.dirs.push(dir);
  }
  return out;
}
