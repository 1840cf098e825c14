import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ioError } from "../model/errors.js";
import { walkSources, type SourceSpec } from "../layer/sources.js";
import { checkScriptResult, runCaptured } from "../runtime/process.js";
import { layTree, type LayDownOptions } from "./lay-tree.js";

export type { LayDownOptions } from "./lay-tree.js";

/**
 * A layer staged on disk: the copyToRoot sources laid out in a directory (over a base's
 * root file system for runAsRoot), where scripts can change them before the directory is
 * walked and compared like any source. Its files are read again when the layer is
 * packed, so it lives until `dispose`.
 */
export interface Stage {
  readonly dir: string;
  dispose(): Promise<void>;
}

/** A new empty stage in the system's temporary directory, named from `prefix`; IoError when it cannot be made. */
export async function makeStage(prefix: string): Promise<Stage> {
  let dir: string;
  try {
    dir = await mkdtemp(join(tmpdir(), prefix));
  } catch (err) {
    throw ioError("the temporary directory for staging a layer", err);
  }
  return { dir, dispose: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * Copies the sources into `root`: walked as a direct build walks them (walkSources, so
 * the same overlay, refusals and error codes), then laid over what `root` already holds
 * (see lay-tree.ts). Returns the root paths of directories made only to hold a source's
 * `to`, which a walk of the staged root should treat as synthetic.
 * @throws GantryError SOURCE_UNREADABLE, UNSAFE_PATH, SPEC_INVALID as walkSources does;
 *         IO when the staging root cannot be written.
 */
export async function layDownSources(sources: readonly SourceSpec[], root: string, opts: LayDownOptions = {}): Promise<string[]> {
  const tree = await walkSources(sources, { signal: opts.signal });
  return layTree(tree, root, opts);
}

/**
 * Runs an extraCommands script: `/bin/sh -c SCRIPT` in `dir` (not chrooted), with
 * gantry's own environment. A non-zero exit fails with its status and last output.
 */
export async function runExtraCommands(script: string, dir: string, signal?: AbortSignal): Promise<void> {
  const opts: Parameters<typeof runCaptured>[2] = { cwd: dir, env: process.env };
  if (signal) opts.signal = signal;
  checkScriptResult("the extraCommands script", await runCaptured("/bin/sh", ["-c", script], opts));
}
