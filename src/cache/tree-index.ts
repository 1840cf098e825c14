import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { digestHex, sha256, type Digest } from "../model/digest.js";
import { treeFromRecords, treeRecords, type FileTree } from "../layer/tree.js";
import type { TreeStore } from "../layer/merged-tree.js";
import { writeFileAtomically } from "../util/atomic.js";
import { gantryVersion } from "./versions.js";

/**
 * The tree index: `<cache>/trees/<key>.json` holds the merged tree of a chain of layers
 * (path → type, mode, owner, size, link, content digest), so a build whose top layer changed
 * compares it with the tree below without decompressing a single layer below.
 *
 * The key hashes the chain's diffIds with the format and gantry's version: diffIds name the
 * layers' contents exactly, so the tree they give never changes; another gantry may read
 * layers differently, so its trees are its own. A file starts with a line holding the sha256
 * of the rest: a damaged or cut file is a miss (and is written again), never a wrong tree.
 */

const TREE_FORMAT = "gantry merged tree 1";

interface Header { format: string; sha256: Digest; nodes: number }

export class TreeIndex implements TreeStore {
  constructor(readonly root: string) {}

  pathOf(chain: readonly Digest[]): string {
    const key = sha256(`${TREE_FORMAT}\n${gantryVersion()}\n${chain.join("\n")}`);
    return join(this.root, `${digestHex(key)}.json`);
  }

  async load(chain: readonly Digest[]): Promise<FileTree | undefined> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.pathOf(chain));
    } catch {
      return undefined;
    }
    const newline = bytes.indexOf(0x0a);
    if (newline < 0) return undefined;
    const body = bytes.subarray(newline + 1);
    try {
      const header = JSON.parse(bytes.subarray(0, newline).toString("utf8")) as Partial<Header>;
      if (header.format !== TREE_FORMAT || header.sha256 !== sha256(body)) return undefined;
      const tree = treeFromRecords(JSON.parse(body.toString("utf8")));
      return tree !== undefined && tree.size === header.nodes ? tree : undefined;
    } catch {
      return undefined;
    }
  }

  async save(chain: readonly Digest[], tree: FileTree): Promise<void> {
    const body = Buffer.from(JSON.stringify(treeRecords(tree)));
    const header: Header = { format: TREE_FORMAT, sha256: sha256(body), nodes: tree.size };
    await mkdir(this.root, { recursive: true });
    await writeFileAtomically(this.pathOf(chain), (temp) => writeFile(temp, Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), body])));
  }
}
