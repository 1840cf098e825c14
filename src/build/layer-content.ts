import type { Layer } from "../model/image.js";
import { GantryError } from "../model/errors.js";
import type { FileTree } from "../layer/tree.js";
import { walkSources } from "../layer/sources.js";
import { diffLayer, type LayerEntry } from "../layer/differ.js";
import type { BuildPlan, PlannedLayer } from "./plan.js";

/**
 * What one new layer holds: the copyToRoot sources compared with the tree below it.
 * (runAsRoot and extraCommands stage the content on disk first.)
 */
export async function layerEntries(
  below: FileTree,
  layer: PlannedLayer,
  _lowerLayers: readonly Layer[],
  plan: BuildPlan,
  signal: AbortSignal | undefined,
): Promise<LayerEntry[]> {
  if (layer.runAsRoot !== undefined || layer.extraCommands !== undefined) {
    throw new GantryError("UNSUPPORTED", "runAsRoot and extraCommands are not supported yet");
  }
  const sources = await walkSources(layer.sources, signal ? { signal } : {});
  return diffLayer(below, sources, {
    uid: plan.uid, gid: plan.gid, uname: plan.uname, gname: plan.gname,
    mtime: plan.mtime, perms: layer.perms, deletions: false,
  });
}
