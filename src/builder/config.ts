import type { Digest } from "../model/digest.js";
import type { ContainerConfig, HistoryEntry, ImageConfigJson } from "../model/oci.js";
import { hostPlatform } from "../model/platform.js";
import type { BuildPlan } from "./plan.js";

/**
 * The new image's config: the base's kept whole, the spec's fields replacing the
 * base's one by one, except `Env`, which is merged by variable name (the spec wins).
 */

/** The base's `KEY=VALUE` list with each of the spec's set: replacing the base's entry of that name in place, else appended. */
export function mergeEnv(base: readonly string[] | undefined, spec: readonly string[]): string[] {
  const nameOf = (kv: string) => kv.slice(0, kv.indexOf("=") === -1 ? kv.length : kv.indexOf("="));
  const out = [...(base ?? [])];
  for (const kv of spec) {
    const at = out.findIndex((b) => nameOf(b) === nameOf(kv));
    if (at === -1) out.push(kv);
    else out[at] = kv;
  }
  return out;
}

/** The runtime config of the new image: the base's, each field the spec sets replacing it, Env merged by mergeEnv. */
export function mergeContainerConfig(base: ContainerConfig | undefined, spec: ContainerConfig | undefined): ContainerConfig {
  const merged: ContainerConfig = { ...(base ?? {}) };
  for (const [key, value] of Object.entries(spec ?? {})) {
    if (value === undefined) continue;
    merged[key] = key === "Env" ? mergeEnv(base?.Env, value as string[]) : value;
  }
  return merged;
}

/** A new layer as the config records it: its diff_id, and the history entry's `created_by`. */
export interface NewLayerRecord { diffId: Digest; createdBy: string }

/**
 * The new image's config: the base's, with the plan's platform, runtime config and `created`, and the
 * new layers' diff_ids and history entries appended (a base with fewer history entries than layers gets placeholders).
 */
export function imageConfig(base: ImageConfigJson | undefined, plan: BuildPlan, newLayers: readonly NewLayerRecord[]): ImageConfigJson {
  const host = hostPlatform();
  const architecture = plan.architecture ?? base?.architecture ?? host.architecture;
  const os = plan.os ?? base?.os ?? host.os;
  const variant = plan.variant ?? (plan.architecture === undefined ? base?.variant : undefined)
    ?? (architecture === host.architecture ? host.variant : undefined);

  const history: HistoryEntry[] = [...(base?.history ?? [])];
  // One history entry per layer: a base that recorded fewer (or none) gets placeholders.
  const baseLayers = base?.rootfs.diff_ids.length ?? 0;
  const recorded = history.filter((h) => !h.empty_layer).length;
  for (let i = recorded; i < baseLayers; i++) history.push({ created: base?.created ?? plan.created, comment: "base layer" });
  for (const l of newLayers) history.push({ created: plan.created, created_by: l.createdBy, comment: "gantry" });

  // Keep every field of the base (unknown ones included) and set ours in a fixed order.
  const out: ImageConfigJson = {
    ...(base ?? {}),
    architecture,
    config: mergeContainerConfig(base?.config, plan.config),
    created: plan.created,
    history,
    os,
    rootfs: { type: "layers", diff_ids: [...(base?.rootfs.diff_ids ?? []), ...newLayers.map((l) => l.diffId)] },
  };
  delete out.variant;
  if (variant !== undefined) out.variant = variant;
  return out;
}

/** The config's bytes as written: compact JSON, keys in the order the object holds them. */
export function configBytes(config: ImageConfigJson): Buffer {
  return Buffer.from(JSON.stringify(config), "utf8");
}
