import { execFileSync } from "node:child_process";
import { realpathSync } from "node:fs";
import { linkChain } from "../../src/builder/closure/link-chain.js";

/**
 * What glibc's loader maps for a program, asked of the loader itself: with
 * LD_TRACE_LOADED_OBJECTS=1, ld.so maps the program's libraries, lists them and exits
 * without running the program's code. The closure tests compare gantry's closures with it.
 */

export interface LoaderTrace {
  /** DT_NEEDED name → the path the loader opened, or undefined for "not found". */
  libraries: Map<string, string | undefined>;
  /** The loader, as the program's PT_INTERP names it. */
  interpreter: string | undefined;
}

/** The loader's list for `program`, in an environment of `env` alone (no LD_LIBRARY_PATH unless given). */
export function loaderTrace(program: string, env: NodeJS.ProcessEnv = {}): LoaderTrace {
  let text: string;
  try {
    text = execFileSync(program, [], { encoding: "utf8", env: { LD_TRACE_LOADED_OBJECTS: "1", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    // ld.so lists what it found, then exits non-zero when a library is missing.
    text = String((err as { stdout?: string }).stdout ?? "");
  }
  const trace: LoaderTrace = { libraries: new Map(), interpreter: undefined };
  for (const line of text.split("\n")) {
    const lib = /^\s+(\S+) => (?:(\/\S+) \(0x|not found)/.exec(line);
    if (lib) {
      trace.libraries.set(lib[1]!, lib[2]);
      continue;
    }
    const interp = /^\s+(\/\S+) \(0x/.exec(line);
    if (interp) trace.interpreter = interp[1];
  }
  return trace;
}

/** The program and every file the trace lists, by real path, sorted. */
export function tracedRealFiles(program: string, trace: LoaderTrace): string[] {
  const files = new Set([realpathSync(program)]);
  if (trace.interpreter !== undefined) files.add(realpathSync(trace.interpreter));
  for (const path of trace.libraries.values()) if (path !== undefined) files.add(realpathSync(path));
  return [...files].sort();
}

/**
 * Every symbolic link and file on the paths the loader opens (the program's, the loader's,
 * each library's), sorted: what an image needs for those paths to resolve in it.
 */
export function tracedPaths(program: string, trace: LoaderTrace): string[] {
  const out = new Set<string>();
  const opened = [program, ...(trace.interpreter !== undefined ? [trace.interpreter] : []), ...[...trace.libraries.values()].filter((p): p is string => p !== undefined)];
  for (const path of opened) {
    const chain = linkChain(path, "a traced path");
    for (const link of chain.links) out.add(link);
    out.add(chain.real);
  }
  return [...out].sort();
}
