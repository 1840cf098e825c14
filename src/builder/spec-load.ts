import { createRequire } from "node:module";
import { readFile } from "node:fs/promises";
import { dirname, extname, isAbsolute, resolve } from "node:path";
import { pathToFileURL, fileURLToPath } from "node:url";
import type { ZodError, ZodIssue } from "zod";
import { SpecError, ioError } from "../model/errors.js";
import { specSchema, type ParsedSpec } from "./spec-schema.js";
import { LEVELS } from "../compression/compression.js";

/**
 * Loads a build spec: a JSON file, or a JS/TS module whose default export is the spec.
 * TypeScript specs load with no build step; `import ... from "gantry"` inside them
 * resolves to this package wherever the spec lives.
 */
export async function loadSpecFile(specPath: string): Promise<unknown> {
  const abs = resolve(specPath);
  const ext = extname(abs).toLowerCase();
  if (ext === ".json") {
    let text: string;
    try {
      text = await readFile(abs, "utf8");
    } catch (err) {
      throw ioError(`the spec file ${specPath}`, err);
    }
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new SpecError(`the spec file ${specPath} is not valid JSON: ${(err as Error).message}`);
    }
  }
  if ([".ts", ".mts", ".cts", ".js", ".mjs", ".cjs"].includes(ext)) {
    try {
      await readFile(abs);
    } catch (err) {
      throw ioError(`the spec file ${specPath}`, err);
    }
    const packageEntry = fileURLToPath(new URL("../index.js", import.meta.url));
    // jiti is loaded only for module specs: a JSON spec's build never pays for it. Required,
    // not imported: the CLI runs as a script compiled from a code cache (cli/launch.ts),
    // where import() has no loader.
    const { createJiti } = createRequire(import.meta.url)("jiti") as typeof import("jiti");
    const jiti = createJiti(pathToFileURL(abs).href, { alias: { gantry: packageEntry }, moduleCache: false, fsCache: false });
    let mod: unknown;
    try {
      mod = await jiti.import(abs);
    } catch (err) {
      throw new SpecError(`the spec module ${specPath} failed to load: ${(err as Error).message.split("\n")[0]}`, { cause: err });
    }
    const value = (mod as { default?: unknown } | undefined)?.default ?? mod;
    return typeof value === "function" ? await (value as () => unknown)() : value;
  }
  throw new SpecError(`the spec file ${specPath} must be .json, .ts, .mts, .js or .mjs`);
}

function fieldName(path: (string | number)[]): string {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : out ? `.${p}` : p;
  return out || "(the spec)";
}

function valueAt(input: unknown, path: (string | number)[]): unknown {
  let v: unknown = input;
  for (const p of path) v = v !== null && typeof v === "object" ? (v as Record<string | number, unknown>)[p] : undefined;
  return v;
}

function samePath(a: readonly (string | number)[], b: readonly (string | number)[]): boolean {
  return a.length === b.length && a.every((p, i) => p === b[i]);
}

/**
 * The issue that says most about a value a union refused: the one of the branch the value
 * was meant for. A branch of another kind altogether (a string, a literal, where an object
 * was given, or a union all of whose branches are of other kinds) says nothing, nor does
 * one that refuses a key the value has (an object of another form) while another does
 * not; when every form refuses some key, the one that refuses fewest (a typo in a key).
 * When no branch is left, or several equally close (forms mixed in one object), the
 * union's own message, the forms it allows, is the answer.
 */
function mostTelling(issue: ZodIssue): ZodIssue {
  if (issue.code !== "invalid_union") return issue;
  const sameKind = issue.unionErrors.map((e) => e.issues).filter((issues) => !(issues.length === 1 && isOtherKind(issues[0]!, issue.path)));
  const refused = (issues: ZodIssue[]) => issues.reduce((n, i) => n + (i.code === "unrecognized_keys" && samePath(i.path, issue.path) ? i.keys.length : 0), 0);
  const fitting = sameKind.filter((issues) => refused(issues) === 0);
  let pick = fitting[0];
  if (pick === undefined && sameKind.length > 0) {
    const fewest = Math.min(...sameKind.map(refused));
    const closest = sameKind.filter((issues) => refused(issues) === fewest);
    if (closest.length === 1) pick = closest[0];
  }
  return pick?.[0] === undefined ? issue : mostTelling(pick[0]);
}

/** Whether a branch's only issue says the value is of another kind than the branch takes. */
function isOtherKind(issue: ZodIssue, path: readonly (string | number)[]): boolean {
  if (!samePath(issue.path, path)) return false;
  if (issue.code === "invalid_type" || issue.code === "invalid_literal") return true;
  return issue.code === "invalid_union" && issue.unionErrors.every((e) => e.issues.length === 1 && isOtherKind(e.issues[0]!, path));
}

function describeIssue(issue: ZodIssue, input: unknown, where: string): string {
  if (issue.code === "invalid_union") {
    const telling = mostTelling(issue);
    if (telling !== issue) return describeIssue(telling, input, where);
  }
  if (issue.code === "unrecognized_keys") {
    const parent = issue.path.length ? `${fieldName(issue.path)} ` : "";
    const hint = issue.keys.includes("contents") ? " (use copyToRoot)" : "";
    return `${where}: unknown field ${parent}${issue.keys.map((k) => `"${k}"`).join(", ")}${hint}`;
  }
  const field = fieldName(issue.path);
  const value = valueAt(input, issue.path);
  if (value === undefined && issue.code === "invalid_type") {
    return `${where}: the field "${field}" is required (${issue.expected})`;
  }
  const shown = JSON.stringify(value)?.slice(0, 80) ?? String(value);
  let allowed: string;
  if (issue.code === "invalid_enum_value") allowed = `one of ${issue.options.map((o) => JSON.stringify(o)).join(", ")}`;
  // zod's own invalid_type message is "Expected array, received string"; a schema's own says what is allowed.
  else if (issue.code === "invalid_type") allowed = issue.message.startsWith("Expected ") || issue.message === "Required" ? `a ${issue.expected}` : issue.message;
  else if (issue.code === "invalid_union") allowed = issue.message === "Invalid input" ? "a valid value" : issue.message;
  else allowed = issue.message;
  return `${where}: the field "${field}" is ${shown}, expected ${allowed}`;
}

/** Validates a spec value, throwing one SpecError that names the first bad field. */
export function validateSpec(input: unknown, where: string): ParsedSpec {
  const parsed = specSchema.safeParse(input);
  if (parsed.success) {
    if (parsed.data.layers && (parsed.data.copyToRoot !== undefined || parsed.data.perms !== undefined)) {
      throw new SpecError(`${where}: give either "layers" or a top-level "copyToRoot"/"perms", not both`);
    }
    const level = parsed.data.compressionLevel;
    if (level !== undefined) {
      const compressor = parsed.data.compressor ?? "gzip";
      if (compressor === "none") throw new SpecError(`${where}: "compressionLevel" is ${level}, but "compressor" is "none", which has no levels`);
      const { min, max } = LEVELS[compressor];
      if (level < min || level > max) throw new SpecError(`${where}: the field "compressionLevel" is ${level}, expected ${min} to ${max} for ${compressor}`);
    }
    const { platforms } = parsed.data;
    if (platforms !== undefined) {
      const clash = (["architecture", "os", "variant"] as const).find((f) => parsed.data[f] !== undefined);
      if (clash) throw new SpecError(`${where}: give either "platforms" or "${clash}", not both`);
      const twice = platforms.find((p, i) => platforms.indexOf(p) !== i);
      if (twice) throw new SpecError(`${where}: "platforms" names ${twice} twice`);
    }
    return parsed.data;
  }
  const mixed = mixedCopyEntry(input);
  if (mixed !== undefined) throw new SpecError(`${where}: ${mixed}`);
  const err: ZodError = parsed.error;
  const first = err.issues[0];
  throw new SpecError(first ? describeIssue(first, input, where) : `${where} is not a valid spec`);
}

const COPY_FORM_KEYS = ["from", "closureOf", "builtin"];

/**
 * A copyToRoot entry that mixes forms ({ "from", "closureOf" }), said as such: zod would
 * take it for the first form and call the other key unknown, which reads as a typo.
 */
function mixedCopyEntry(input: unknown): string | undefined {
  const spec = input as { copyToRoot?: unknown; layers?: unknown } | null;
  if (spec === null || typeof spec !== "object") return undefined;
  const lists: Array<[string, unknown]> = [["copyToRoot", spec.copyToRoot]];
  if (Array.isArray(spec.layers)) spec.layers.forEach((l, i) => lists.push([`layers[${i}].copyToRoot`, (l as { copyToRoot?: unknown } | null)?.copyToRoot]));
  for (const [field, value] of lists) {
    const entries: Array<[string, unknown]> = Array.isArray(value) ? value.map((e, i) => [`${field}[${i}]`, e]) : [[field, value]];
    for (const [at, entry] of entries) {
      if (entry === null || typeof entry !== "object") continue;
      const forms = COPY_FORM_KEYS.filter((k) => k in entry);
      if (forms.length > 1) {
        return `the field "${at}" mixes ${forms.map((f) => `"${f}"`).join(" and ")}; an entry is one of { "from": PATH, "to": "/dir" }, { "closureOf": [PROGRAM, ...] } or { "builtin": NAME }, so make them separate entries`;
      }
    }
  }
  return undefined;
}

/** Resolves a path written in a spec relative to the spec's directory. */
export function specRelative(specDir: string, p: string): string {
  return isAbsolute(p) ? p : resolve(specDir, p);
}

/** The directory a spec file's relative paths start from: its own, absolute. */
export function specDirOf(specPath: string): string {
  return dirname(resolve(specPath));
}
