import {
  AbortedError, GantryError, IoError, RuntimeError, SourceUnreadableError, SpecError, UnsafePathError,
} from "../model/errors.js";
import { SourceTree, type SourceNode, type SourceSpec } from "../layer/sources.js";

/**
 * What gantry and its agent in the user namespace (rootless-agent.ts) tell each other, as
 * JSON files in a private directory: the job going in, the walked root (or the error)
 * coming back. Owners in both are ids inside the namespace.
 */

/** An owner to give a path of the extracted root: [path, uid, gid, mode, isSymlink]. */
export type OwnerRecord = [path: string, uid: number, gid: number, mode: number, isSymlink: boolean];

/**
 * The job the agent runs: give the stage's paths their owners, lay the sources, run the scripts,
 * walk the root, and write an AgentResult to `resultFile`.
 */
export interface AgentJob {
  /** The staging root, extracted by gantry (every path owned by the user, i.e. 0 inside). */
  stage: string;
  /** The owners the extraction could not give, in tree order. */
  owners: OwnerRecord[];
  sources: SourceSpec[];
  /** The owner of laid sources, inside the namespace. */
  owner: { uid: number; gid: number };
  /** The runAsRoot script, run with the image's /bin/sh in the stage. */
  script: string;
  /** The image's Env, NAME=VALUE, for the script; runInRoot adds PATH and HOME when missing. */
  env: string[];
  /** The extraCommands script, run after runAsRoot in the stage, not chrooted. */
  extraCommands?: string;
  /** Where the agent writes its AgentResult. */
  resultFile: string;
}

/** What the agent hands back: the walked root, or the code and message of the GantryError it met. */
export type AgentResult =
  | {
    ok: true;
    /** The walked root, owners as the namespace sees them: [path, node] in byte order. */
    tree: Array<[string, SourceNode]>;
    /** Root-relative paths given the layer's owner while laying the sources. */
    laid: string[];
  }
  | { ok: false; code: string; message: string };

/** A walked tree as the [path, node] pairs an AgentResult carries. */
export function treeToJson(tree: SourceTree): Array<[string, SourceNode]> {
  return [...tree.entries()];
}

/** The walked tree an AgentResult carries, back as a SourceTree. */
export function treeFromJson(entries: ReadonlyArray<[string, SourceNode]>): SourceTree {
  const tree = new SourceTree();
  for (const [path, node] of entries) tree.set(path, node);
  return tree;
}

/** The agent's failure as data. */
export function failureOf(err: unknown): AgentResult {
  if (err instanceof GantryError) return { ok: false, code: err.code, message: err.message };
  return { ok: false, code: "RUNTIME", message: `the runAsRoot agent failed: ${err instanceof Error ? err.message : String(err)}` };
}

/** The agent's failure as the error gantry throws, of the same class as in the agent. */
export function errorOf(result: { code: string; message: string }): GantryError {
  switch (result.code) {
    case "IO": return new IoError(result.message);
    case "SOURCE_UNREADABLE": return new SourceUnreadableError(result.message);
    case "UNSAFE_PATH": return new UnsafePathError(result.message);
    case "SPEC_INVALID": return new SpecError(result.message);
    case "ABORTED": return new AbortedError(undefined, result.message);
    default: return new RuntimeError(result.message);
  }
}
