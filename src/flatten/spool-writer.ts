import { closeSync, openSync } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { digestHex, type Digest } from "../model/digest.js";
import { GantryError, ioError, IoError } from "../model/errors.js";
import type { LayerEntry } from "../layer/differ.js";
import type { FileTree, TreeNode } from "../layer/tree.js";
import type { LinkGroup, LinkPlan } from "./hardlinks.js";
import { drain } from "../layer/layer-entries.js";
import { writeHashed, type FileContentSink } from "./layer-files.js";

/**
 * Collects the bytes of a flattened root in a spool directory, one file per distinct
 * content (named by its sha256), then turns the merged tree into the entry list the
 * layer engine's deterministic tar writer takes: every path once, in byte order, with
 * the tree's modes, owners and times; hardlink groups as one file and links to it.
 */
export class SpoolWriter implements FileContentSink {
  /**
   * The digest of each path whose bytes are not what the tree's node names (an orphan
   * hardlink's, whose node has none). Every other path's bytes are its node's digest: a map
   * of them all cost 100 bytes a path.
   */
  private readonly digestOf = new Map<string, Digest>();
  /** The contents in the spool, by digest. */
  private readonly spooled = new Set<Digest>();
  /** `spoolDir` must exist and be empty; the caller removes it. */
  constructor(private readonly spoolDir: string) {}

  async file(path: string, node: TreeNode, content: AsyncIterable<Buffer>): Promise<Digest> {
    // Content the spool has (every empty file, a file the image holds twice) is not written
    // again: the tree's digest names it, and the layer's diff_id vouches for the bytes. An
    // export of 800,000 empty files opened and renamed a spool file for each, 220 s.
    const known = node.contentDigest;
    if (known !== undefined && this.spooled.has(known)) {
      await drain(content);
      return known;
    }
    const temp = join(this.spoolDir, `tmp-${randomBytes(6).toString("hex")}`);
    let fd: number;
    try {
      fd = openSync(temp, "wx", 0o600);
    } catch (err) {
      throw ioError(`the spool file ${temp}`, err);
    }
    let digest: Digest;
    try {
      digest = await writeHashed(fd, content);
    } catch (err) {
      await rm(temp, { force: true });
      throw err instanceof GantryError ? err : ioError(`the spool file ${temp}`, err);
    } finally {
      closeSync(fd);
    }
    await rename(temp, this.spoolPath(digest)).catch((e: unknown) => { throw ioError(`the spool file ${temp}`, e); });
    this.spooled.add(digest);
    if (digest !== known) this.digestOf.set(path, digest);
    return digest;
  }

  copy(_from: string, path: string, node: TreeNode, digest: Digest): Promise<Digest> {
    if (digest !== node.contentDigest) this.digestOf.set(path, digest);
    return Promise.resolve(digest);
  }

  /**
   * The tar entries of the flattened root, sorted, file bytes read from the spool; made one
   * by one as the tar is written (an 800,000-path root held as a list cost 120 MB).
   */
  *entries(tree: FileTree, links: LinkPlan): Generator<LayerEntry> {
    const groupOf = new Map<string, LinkGroup>();
    for (const g of links.groups) for (const m of g.members) groupOf.set(m, g);
    for (const [path, node] of tree.entries()) {
      const group = groupOf.get(path);
      if (group !== undefined) {
        const first = group.members[0] as string;
        yield path === first
          ? this.fileEntry(path, group.node, group.holder)
          : { ...attributes(path, group.node), type: "hardlink", size: 0, linkname: first };
        continue;
      }
      if (node.type === "file") yield this.fileEntry(path, node, path);
      else if (node.type === "hardlink") {
        throw new IoError(`the hardlink ${path} was left out of its link group`);
      } else {
        const e: LayerEntry = { ...attributes(path, node), type: node.type, size: 0 };
        if (node.linkname !== undefined) e.linkname = node.linkname;
        if (node.devmajor !== undefined) e.devmajor = node.devmajor;
        if (node.devminor !== undefined) e.devminor = node.devminor;
        yield e;
      }
    }
  }

  private fileEntry(path: string, node: TreeNode, bytesOf: string): LayerEntry {
    const digest = this.digestOf.get(bytesOf) ?? node.contentDigest;
    if (digest === undefined || !this.spooled.has(digest)) throw new IoError(`the bytes of ${bytesOf} were never read from its layer`);
    const entry: LayerEntry = { ...attributes(path, node), type: "file", size: node.size };
    // An empty file has nothing to read: the tar writer writes its header alone.
    if (node.size > 0) entry.content = { kind: "hostFile", path: this.spoolPath(digest) };
    return entry;
  }

  private spoolPath(digest: Digest): string {
    return join(this.spoolDir, digestHex(digest));
  }
}

function attributes(path: string, node: TreeNode): Pick<LayerEntry, "path" | "mode" | "uid" | "gid" | "uname" | "gname" | "mtime"> {
  return { path, mode: node.mode, uid: node.uid, gid: node.gid, uname: "", gname: "", mtime: node.mtime };
}
