import type { FileTree } from "../layer/tree.js";
import type { SourceTree } from "../layer/sources.js";
import { parentPath } from "../model/image-path.js";
import { isMappedInside, type IdMapping } from "../runtime/id-map.js";
import type { OwnerRecord } from "./rootless-job.js";

/**
 * The owners of runAsRoot's root file system when gantry is not root (rootless-stage.ts).
 *
 * Extracted by the user, every path belongs to the user, which is 0 in the namespace; the
 * agent then gives each path its image owner. An owner the namespace lacks (any id but 0
 * without subordinate ranges, or an id beyond them) cannot be given: such a path stays 0
 * for the script ("collapsed"), and the walked result gets the image's owner back where
 * the script left 0, since 0 is all the script could have set there. So a script that
 * edits /etc/shadow (group 42) keeps group 42 in the layer, as it would under real root;
 * one that deletes and recreates such a path also keeps the old owner, where real root
 * would give 0: the one case these cannot tell apart.
 */

/** The image's ids a path had that the namespace could not give it. */
export interface CollapsedOwner {
  uid?: number;
  gid?: number;
}

/** What ownersToApply found: the owners the agent gives, and those it cannot. */
export interface OwnerPlan {
  /** Owners the agent gives, inside the namespace, in tree order. */
  records: OwnerRecord[];
  /** Path → the owner it would have had, where that owner was collapsed to 0. */
  collapsed: Map<string, CollapsedOwner>;
}

/** What the agent must do to give the extracted `tree` its owners, skipping `absent` paths (devices the user cannot make). */
export function ownersToApply(tree: FileTree, mapping: IdMapping, absent: ReadonlySet<string>): OwnerPlan {
  const plan: OwnerPlan = { records: [], collapsed: new Map() };
  for (const [path, node] of tree.entries()) {
    if (absent.has(path)) continue;
    const inside = ownerInside({ uid: node.uid, gid: node.gid }, mapping);
    if (inside.collapsed) plan.collapsed.set(path, inside.collapsed);
    if (inside.uid !== 0 || inside.gid !== 0) plan.records.push([path, inside.uid, inside.gid, node.mode, node.type === "symlink"]);
  }
  return plan;
}

/** `owner` as the namespace can hold it: each id kept when mapped, else 0 (and noted as collapsed). */
export function ownerInside(owner: { uid: number; gid: number }, mapping: IdMapping): { uid: number; gid: number; collapsed?: CollapsedOwner } {
  const uidOk = isMappedInside(mapping.uids, owner.uid);
  const gidOk = isMappedInside(mapping.gids, owner.gid);
  const out: { uid: number; gid: number; collapsed?: CollapsedOwner } = { uid: uidOk ? owner.uid : 0, gid: gidOk ? owner.gid : 0 };
  if (!uidOk || !gidOk) {
    out.collapsed = {};
    if (!uidOk) out.collapsed.uid = owner.uid;
    if (!gidOk) out.collapsed.gid = owner.gid;
  }
  return out;
}

/** Gives back each collapsed id where the walked path still shows 0; returns how many paths changed. */
export function restoreCollapsedOwners(walked: SourceTree, collapsed: ReadonlyMap<string, CollapsedOwner>): number {
  let changed = 0;
  for (const [path, want] of collapsed) {
    const node = walked.get(path);
    if (node === undefined) continue;
    // The agent walks with owners, so every node has them; absent would mean 0.
    const uid = want.uid !== undefined && (node.uid ?? 0) === 0 ? want.uid : node.uid ?? 0;
    const gid = want.gid !== undefined && (node.gid ?? 0) === 0 ? want.gid : node.gid ?? 0;
    if (uid === node.uid && gid === node.gid) continue;
    walked.set(path, { ...node, uid, gid });
    changed++;
  }
  return changed;
}

/**
 * Device nodes the user could not make were never in the staged root, so the script
 * could not touch them: they stay as the image has them (not deleted), unless the script
 * put something else at their path or removed their directory.
 */
export function keepUnmadeDevices(walked: SourceTree, below: FileTree, unmade: readonly string[]): void {
  for (const path of unmade) {
    if (walked.has(path)) continue;
    const parent = parentPath(path);
    if (parent !== "" && walked.get(parent)?.type !== "dir") continue;
    const node = below.get(path);
    if (node === undefined || (node.type !== "char" && node.type !== "block")) continue;
    walked.set(path, {
      type: node.type, mode: node.mode, size: 0, uid: node.uid, gid: node.gid,
      ...(node.devmajor !== undefined ? { devmajor: node.devmajor } : {}),
      ...(node.devminor !== undefined ? { devminor: node.devminor } : {}),
    });
  }
}
