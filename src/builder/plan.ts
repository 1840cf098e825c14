import { SpecError } from "../model/errors.js";
import type { Digest } from "../model/digest.js";
import type { Compression } from "../model/mediatypes.js";
import type { ContainerConfig, Platform } from "../model/oci.js";
import { parsePlatform } from "../model/platform.js";
import type { BuiltinName, ParsedSpec } from "./spec-schema.js";
import { specRelative } from "./spec-load.js";
import { referenceRelativeTo } from "../transports/reference.js";

/**
 * A validated spec turned into what the build needs: absolute paths, numeric modes,
 * resolved times and one entry per layer to make. No I/O happens here.
 */

/** Host directory (or file) `from` laid at image path `to`. */
export interface CopySource { from: string; to: string }
/** Host programs with their loader and shared libraries, resolved when the build runs (builder/expand-sources.ts). */
export interface ClosureSource { closureOf: string[] }
/** A builtin of generated files or a host program's closure (builder/builtins.ts). */
export interface BuiltinSource { builtin: BuiltinName }
/**
 * A copyToRoot entry as planned. Closures and builtins read the host, so planning leaves
 * them as they are; the build turns them into CopySources before any layer is made.
 */
export type PlannedSource = CopySource | ClosureSource | BuiltinSource;
/**
 * A perms rule as planned: the glob of image paths it applies to, and the mode (parsed from octal) and
 * owner to give them; what a rule leaves out stays as it was.
 */
export interface PlannedPerm { path: string; mode?: number; uid?: number; gid?: number }

/** A layer to make; `S` is CopySource once the closures and builtins are expanded. */
export interface PlannedLayer<S extends PlannedSource = PlannedSource> {
  sources: S[];
  perms: PlannedPerm[];
  runAsRoot?: string;
  extraCommands?: string;
  /** Split into several layers by unit (package) to fill what `maxLayers` leaves (see units.ts). */
  splittable?: true;
}

/** A build as planned; `S` is CopySource once the closures and builtins are expanded (`ExpandedPlan`). */
export interface BuildPlan<S extends PlannedSource = PlannedSource> {
  name: string;
  tag?: string;
  fromImage?: string;
  /** The digest the base must have: its index's or its image's manifest digest, whatever the transport. */
  fromImageDigest?: Digest;
  /** NAME[:TAG] picking one image of a multi-image base. */
  pick?: string;
  layers: PlannedLayer<S>[];
  config?: ContainerConfig;
  architecture?: string;
  os?: string;
  variant?: string;
  /** ISO-8601, second precision. */
  created: string;
  /** Seconds since the epoch, for every file of the new layers. */
  mtime: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  compression: Compression;
  /** The compressor's level; its default (compression.ts) when absent. */
  level?: number;
  /** The total number of layers, the base's included (as nixpkgs counts). */
  maxLayers?: number;
  /** One image per platform, written as an index; absent for a single-platform build. */
  platforms?: Platform[];
}

/** A plan whose layers hold only host paths: what the layers are made from. */
export type ExpandedPlan = BuildPlan<CopySource>;
/** A layer whose sources are all host paths. */
export type ExpandedLayer = PlannedLayer<CopySource>;

/** The `created` time of a spec that gives none: fixed, so the same spec makes the same config. */
export const DEFAULT_CREATED = "1970-01-01T00:00:01Z";

function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

function resolveTime(value: string, field: string, now: () => Date): Date {
  if (value === "now") return now();
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new SpecError(`the field "${field}" is ${JSON.stringify(value)}, expected an ISO-8601 time or "now"`);
  return d;
}

function parseMode(mode: string | number | undefined): number | undefined {
  if (mode === undefined) return undefined;
  return typeof mode === "number" ? mode : parseInt(mode, 8);
}

function toSources(copyToRoot: ParsedSpec["copyToRoot"], specDir: string): PlannedSource[] {
  if (copyToRoot === undefined) return [];
  const list = Array.isArray(copyToRoot) ? copyToRoot : [copyToRoot];
  return list.map((s): PlannedSource => {
    if (typeof s === "string") return { from: specRelative(specDir, s), to: "/" };
    if ("closureOf" in s) return { closureOf: s.closureOf.map((p) => specRelative(specDir, p)) };
    if ("builtin" in s) return { builtin: s.builtin };
    return { from: specRelative(specDir, s.from), to: s.to };
  });
}

function toPerms(perms: ParsedSpec["perms"]): PlannedPerm[] {
  return (perms ?? []).map((p) => {
    const out: PlannedPerm = { path: p.path };
    const mode = parseMode(p.mode);
    if (mode !== undefined) out.mode = mode;
    if (p.uid !== undefined) out.uid = p.uid;
    if (p.gid !== undefined) out.gid = p.gid;
    return out;
  });
}

/**
 * The layers of the top-level fields: the copyToRoot sources, then runAsRoot and
 * extraCommands acting on them. With `maxLayers` the sources' layer is split by unit when
 * built, and a script gets a layer of its own above them.
 */
function topLevelLayers(spec: ParsedSpec, specDir: string): PlannedLayer[] {
  const sources = toSources(spec.copyToRoot, specDir);
  const perms = toPerms(spec.perms);
  const scripts: Pick<PlannedLayer, "runAsRoot" | "extraCommands"> = {};
  if (spec.runAsRoot !== undefined) scripts.runAsRoot = spec.runAsRoot;
  if (spec.extraCommands !== undefined) scripts.extraCommands = spec.extraCommands;
  const hasScript = Object.keys(scripts).length > 0;
  if (spec.maxLayers === undefined) return [{ sources, perms, ...scripts }];
  const split: PlannedLayer = { sources, perms, splittable: true };
  return hasScript ? [split, { sources: [], perms, ...scripts }] : [split];
}

/**
 * Turns a validated spec into a plan, `specDir` anchoring its relative paths. `mtime` defaults to
 * SOURCE_DATE_EPOCH in `env`, else `created`. Throws SpecError for a bad time or a fromImageDigest without fromImage.
 */
export function planBuild(spec: ParsedSpec, specDir: string, env: NodeJS.ProcessEnv = process.env, now: () => Date = () => new Date()): BuildPlan {
  const created = resolveTime(spec.created ?? DEFAULT_CREATED, "created", now);
  let mtime: number;
  if (typeof spec.mtime === "number") mtime = spec.mtime;
  else if (spec.mtime !== undefined) mtime = Math.floor(resolveTime(spec.mtime, "mtime", now).getTime() / 1000);
  else if (env["SOURCE_DATE_EPOCH"] !== undefined && /^\d+$/.test(env["SOURCE_DATE_EPOCH"])) mtime = Number(env["SOURCE_DATE_EPOCH"]);
  else mtime = Math.floor(created.getTime() / 1000);

  // With hand-made layers, what maxLayers leaves goes to the first: dependencies usually come first.
  const layers: PlannedLayer[] = spec.layers
    ? spec.layers.map((l, i) => {
        const layer: PlannedLayer = { sources: toSources(l.copyToRoot, specDir), perms: toPerms(l.perms) };
        if (l.runAsRoot !== undefined) layer.runAsRoot = l.runAsRoot;
        if (l.extraCommands !== undefined) layer.extraCommands = l.extraCommands;
        if (i === 0 && spec.maxLayers !== undefined && l.runAsRoot === undefined && l.extraCommands === undefined) layer.splittable = true;
        return layer;
      })
    : topLevelLayers(spec, specDir);

  const plan: BuildPlan = {
    name: spec.name,
    layers,
    created: isoSeconds(created),
    mtime,
    uid: spec.uid ?? 0,
    gid: spec.gid ?? 0,
    uname: spec.uname ?? "",
    gname: spec.gname ?? "",
    compression: spec.compressor ?? "gzip",
  };
  if (spec.compressionLevel !== undefined) plan.level = spec.compressionLevel;
  if (spec.maxLayers !== undefined) plan.maxLayers = spec.maxLayers;
  if (spec.platforms !== undefined) plan.platforms = spec.platforms.map((p) => parsePlatform(p)!);
  if (spec.tag !== undefined) plan.tag = spec.tag;
  if (spec.fromImage !== undefined) plan.fromImage = referenceRelativeTo(spec.fromImage, specDir);
  if (spec.fromImageDigest !== undefined) {
    if (spec.fromImage === undefined) throw new SpecError(`"fromImageDigest" pins the base, but the spec has no "fromImage"; give the base too`);
    plan.fromImageDigest = spec.fromImageDigest;
  }
  if (spec.fromImageName !== undefined || spec.fromImageTag !== undefined) {
    plan.pick = spec.fromImageTag !== undefined ? `${spec.fromImageName ?? ""}:${spec.fromImageTag}` : spec.fromImageName!;
  }
  if (spec.config !== undefined) plan.config = spec.config as ContainerConfig;
  if (spec.architecture !== undefined) plan.architecture = spec.architecture;
  if (spec.os !== undefined) plan.os = spec.os;
  if (spec.variant !== undefined) plan.variant = spec.variant;
  return plan;
}
