import type { Digest } from "../model/digest.js";
import type { Layer } from "../model/image.js";
import type { ImageConfigJson } from "../model/oci.js";
import type { BelowTree } from "../layer/below-tree.js";
import { walkSources, type SourceTree } from "../layer/sources.js";
import { diffLayer, type DiffOptions, type LayerEntry } from "../layer/differ.js";
import { extractLayers } from "../flatten/flatten.js";
import { runInRoot } from "../runtime/sandbox.js";
import { needsUserNamespace } from "../runtime/rootless-namespace.js";
import type { ProgressListener } from "../model/progress.js";
import { mergeEnv } from "./config.js";
import type { ExpandedLayer, ExpandedPlan } from "./plan.js";
import { layDownSources, makeStage, runExtraCommands, type Stage } from "./stage.js";
import { runAsRootWithoutRoot } from "./rootless-stage.js";

/** A new layer's entries, and the clean-up of the staging directory their bytes are read from. */
export interface LayerContent {
  entries: LayerEntry[];
  /** Call once the entries are packed (a no-op when nothing was staged). */
  dispose(): Promise<void>;
}

/** Sources walked for a layer's key, with the content digests the key was made of. */
export interface WalkedSources {
  tree: SourceTree;
  /** By host path (LayerKey.digests). */
  digests?: ReadonlyMap<string, Digest>;
}

const NOTHING_STAGED = async (): Promise<void> => {};

/**
 * What one new layer holds, compared with `below` (the merged tree of `lowerLayers`):
 *
 * - copyToRoot only: the sources themselves, walked where they are, compared through
 *   `below`'s lookup journal when it can answer.
 * - extraCommands: the sources copied to a staging directory, the script run there
 *   (not chrooted), then the directory walked as the layer's one source.
 * - runAsRoot: the lower layers exported to a root file system, the sources laid over
 *   it (owned by the spec's uid/gid), the script run as root inside it (then
 *   extraCommands, in the same directory), and the whole root compared with `below`:
 *   deletions become whiteouts, and every path keeps the owner the script left, as
 *   nixpkgs does for runAsRoot layers. When gantry is not root, the same happens in a
 *   user namespace (rootless-stage.ts), with the same result.
 */
export async function layerContent(
  belowTree: BelowTree,
  layer: ExpandedLayer,
  lowerLayers: readonly Layer[],
  plan: ExpandedPlan,
  signal: AbortSignal | undefined,
  baseConfig?: ImageConfigJson,
  /** The copyToRoot sources already walked (by the cache key), so they are not walked twice. */
  walked?: WalkedSources,
  progress: ProgressListener = () => {},
): Promise<LayerContent> {
  const diffOptions: DiffOptions = {
    uid: plan.uid, gid: plan.gid, uname: plan.uname, gname: plan.gname,
    mtime: plan.mtime, perms: layer.perms, deletions: false,
  };
  if (signal) diffOptions.signal = signal;
  const walkOpts = signal ? { signal } : {};

  if (layer.runAsRoot === undefined && layer.extraCommands === undefined) {
    const sources = walked?.tree ?? await walkSources(layer.sources, walkOpts);
    const entries = await belowTree.compare((lower) => diffLayer(lower, sources, { ...diffOptions, knownDigests: walked?.digests }));
    return { entries, dispose: NOTHING_STAGED };
  }

  const below = await belowTree.tree();
  const runAsRoot = layer.runAsRoot;
  const stage = await makeStage(runAsRoot !== undefined ? "gantry-rootfs-" : "gantry-stage-");
  try {
    let staged: SourceTree;
    if (runAsRoot !== undefined && needsUserNamespace()) {
      const rootless = await runAsRootWithoutRoot({
        stage, below, lowerLayers, sources: layer.sources, owner: { uid: plan.uid, gid: plan.gid }, script: runAsRoot,
        env: mergeEnv(baseConfig?.config?.Env ?? undefined, plan.config?.Env ?? []), extraCommands: layer.extraCommands, signal, progress,
      });
      const entries = await diffLayer(below, rootless.tree, { ...diffOptions, deletions: true })
        .catch(async (err: unknown) => { await rootless.dispose(); throw err; });
      return { entries, dispose: rootless.dispose };
    }
    if (runAsRoot !== undefined) {
      await extractLayers(lowerLayers, stage.dir, walkOpts);
      await layDownSources(layer.sources, stage.dir, { owner: { uid: plan.uid, gid: plan.gid }, ...walkOpts });
      const env = mergeEnv(baseConfig?.config?.Env ?? undefined, plan.config?.Env ?? []);
      await runInRoot({ rootfs: stage.dir, script: runAsRoot, env, ...walkOpts });
      if (layer.extraCommands !== undefined) await runExtraCommands(layer.extraCommands, stage.dir, signal);
      staged = await walkSources([{ from: stage.dir, to: "/" }], { ...walkOpts, owners: true });
      return withStage(stage, await diffLayer(below, staged, { ...diffOptions, deletions: true }));
    }
    const madeForTo = await layDownSources(layer.sources, stage.dir, walkOpts);
    await runExtraCommands(layer.extraCommands ?? "", stage.dir, signal);
    staged = await walkSources([{ from: stage.dir, to: "/" }], walkOpts);
    markMadeForTo(staged, madeForTo);
    return withStage(stage, await diffLayer(below, staged, diffOptions));
  } catch (err) {
    await stage.dispose();
    throw err;
  }
}

function withStage(stage: Stage, entries: LayerEntry[]): LayerContent {
  return { entries, dispose: stage.dispose };
}

/**
 * Directories staging made only to hold a source's `to` are, as in a direct walk,
 * synthetic (no mode of their own, not stored over a base directory), unless the
 * script changed their mode.
 */
function markMadeForTo(tree: SourceTree, madeForTo: readonly string[]): void {
  for (const path of madeForTo) {
    const node = tree.get(path);
    if (node?.type === "dir" && node.mode === 0o755) tree.set(path, { ...node, synthetic: true });
  }
}
