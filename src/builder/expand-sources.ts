import { SpecError, throwIfAborted } from "../model/errors.js";
import { hostPlatform } from "../model/platform.js";
import type { SourceSpec } from "../layer/sources.js";
import { builtinSources, closureSources, type BuiltinContext, type BuiltinSources } from "./builtins.js";
import type { ClosureProgram } from "./closure/resolve.js";
import type { BuildPlan, ExpandedLayer, ExpandedPlan, PlannedSource } from "./plan.js";

/**
 * Turns a plan's `closureOf` and `builtin` entries into the ordinary single-path sources
 * they stand for, once per build and before any layer is made (planning does no I/O; this
 * reads the host's programs, libraries and ld.so.cache). A failure here (a missing
 * library) stops the build before anything is written.
 */

/** What expandSources gives: the plan with only host paths left as sources, and what its closures found. */
export interface Expanded {
  plan: ExpandedPlan;
  /** Every ELF program a closure brought, for the check against the image's architecture. */
  programs: ClosureProgram[];
  /** What the user should know (search path elements left out, libraries found only through the host's cache). */
  notes: string[];
}

/** What expandSources needs to expand builtins and closures, and the signal that stops it. */
export interface ExpandOptions extends BuiltinContext {
  signal?: AbortSignal | undefined;
}

/**
 * The plan with every closureOf and builtin source replaced by the host paths it stands for, with the
 * programs and notes found. Throws as resolveClosure and builtinSources do.
 */
export async function expandSources(plan: BuildPlan, opts: ExpandOptions): Promise<Expanded> {
  const programs: ClosureProgram[] = [];
  const notes = new Set<string>();
  const layers: ExpandedLayer[] = [];
  for (const layer of plan.layers) {
    const sources: SourceSpec[] = [];
    for (const source of layer.sources) {
      throwIfAborted(opts.signal);
      const expanded = await expandOne(source, opts);
      sources.push(...expanded.sources);
      programs.push(...expanded.programs);
      for (const note of expanded.notes) notes.add(note);
    }
    layers.push({ ...layer, sources });
  }
  return { plan: { ...plan, layers }, programs, notes: [...notes] };
}

async function expandOne(source: PlannedSource, opts: ExpandOptions): Promise<BuiltinSources> {
  if ("closureOf" in source) return closureSources(source.closureOf, opts);
  if ("builtin" in source) return builtinSources(source.builtin, opts);
  return { sources: [source], programs: [], notes: [] };
}

/** Architectures whose machines also run another's programs (as the kernel's compat modes do). */
const ALSO_RUNS: Record<string, readonly string[]> = { amd64: ["386"], arm64: ["arm"] };

/**
 * Refuses an image whose closure programs are for another machine than the image's
 * platform: it would load, and fail only when run (a multi-platform spec takes the host's
 * programs into every platform's image).
 */
export function checkClosureArchitecture(programs: readonly ClosureProgram[], architecture: string): void {
  for (const p of programs) {
    if (p.goArch === undefined || p.goArch === architecture || ALSO_RUNS[architecture]?.includes(p.goArch)) continue;
    const host = hostPlatform().architecture === p.goArch ? " (this host's)" : "";
    throw new SpecError(`the closureOf program ${p.path} is for ${p.description}${host}, and the image is for ${architecture}; build that platform without it, or name a program for ${architecture}`);
  }
}
