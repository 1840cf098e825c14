import type { Digest } from "../model/digest.js";
import { comparePaths } from "../model/image-path.js";
import type { FileTree, TreeNode } from "../layer/tree.js";

/**
 * Hardlinks of a merged tree, grouped by the inode they share once the image is flattened.
 *
 * A hardlink entry names a path, but it means the file that path held when the link's
 * layer was applied. Usually that file is still there ("direct" group: the file and its
 * links). When a higher layer replaced or deleted it, the links keep the old bytes, which
 * no surviving file holds ("orphan" group): those bytes must be taken from the lower
 * layer's entry at the target path while the layers are streamed.
 */
export interface LinkGroup {
  /** Every path sharing the inode, in byte order; in a tar the first holds the bytes. */
  members: string[];
  /** The path whose bytes are written while the layers stream; every other member links to it. */
  holder: string;
  /** Mode, owner, size, content digest and mtime of the shared inode. */
  node: TreeNode;
  /**
   * For an orphan group: the path the links name and the digest of the bytes they mean.
   * Any regular-file entry at `target` with those bytes will do; the digest tells them apart.
   * No digest: the link names no regular file at all, and the group cannot be filled.
   */
  orphan?: { target: string; digest: Digest | undefined };
}

/** The hardlink groups of a merged tree, as planHardlinks finds them. */
export interface LinkPlan {
  groups: LinkGroup[];
  /** Orphan groups by the target path whose lower-layer entry carries their bytes. */
  orphansByTarget: Map<string, LinkGroup[]>;
}

/** Linux stops after 40 hops; a chain of hardlinks longer than that is a loop. */
const MAX_CHAIN = 40;

function sameInode(link: TreeNode, file: TreeNode): boolean {
  return file.type === "file" && link.contentDigest === file.contentDigest
    && link.mode === file.mode && link.uid === file.uid && link.gid === file.gid;
}

/** The surviving regular file a hardlink shares its inode with, if it still exists. */
function survivingTarget(tree: FileTree, path: string, node: TreeNode): string | undefined {
  let target = node.linkname;
  for (let hops = 0; target !== undefined && hops < MAX_CHAIN; hops++) {
    const t = tree.get(target);
    if (t === undefined) return undefined;
    if (t.type === "file") return sameInode(node, t) ? target : undefined;
    if (t.type !== "hardlink" || t.linkname === path) return undefined;
    target = t.linkname;
  }
  return undefined;
}

/**
 * Groups the hardlinks of `tree` by the inode they share once flattened: a direct group per
 * surviving target file, an orphan group per target whose bytes only a lower layer holds.
 */
export function planHardlinks(tree: FileTree): LinkPlan {
  const direct = new Map<string, LinkGroup>();
  const orphans = new Map<string, LinkGroup>();
  for (const [path, node] of tree.entries()) {
    if (node.type !== "hardlink") continue;
    const target = survivingTarget(tree, path, node);
    if (target !== undefined) {
      const file = tree.get(target) as TreeNode;
      let group = direct.get(target);
      if (!group) direct.set(target, (group = { members: [target], holder: target, node: file }));
      group.members.push(path);
      continue;
    }
    // A link to nothing (or to a symlink, a device...) gets a group that no entry can fill;
    // the layer stream then reports it, after its own, more precise, safety checks.
    const linkname = node.linkname ?? "";
    const key = `${linkname}\0${node.contentDigest ?? ""}`;
    let group = orphans.get(key);
    if (!group) {
      group = {
        members: [], holder: path, node,
        orphan: { target: linkname, digest: node.contentDigest },
      };
      orphans.set(key, group);
    }
    group.members.push(path);
  }
  const groups = [...direct.values(), ...orphans.values()];
  for (const g of groups) g.members.sort(comparePaths);
  for (const g of orphans.values()) g.holder = g.members[0] ?? g.holder;
  const orphansByTarget = new Map<string, LinkGroup[]>();
  for (const g of orphans.values()) {
    const target = g.orphan?.target ?? "";
    const list = orphansByTarget.get(target);
    if (list) list.push(g);
    else orphansByTarget.set(target, [g]);
  }
  return { groups, orphansByTarget };
}
