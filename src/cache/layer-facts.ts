import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { digestHex, sha256, type Digest } from "../model/digest.js";
import { factRecords, factsFromRecords, type LayerFacts } from "../layer/apply-layer.js";
import type { FactsStore } from "../layer/merged-tree.js";
import { writeFileAtomically } from "../util/atomic.js";
import { gantryVersion } from "./versions.js";
import { touchUsed } from "./prune.js";

/**
 * The layer facts index: `<cache>/facts/<key>.json` holds what one layer says, entry by
 * entry (path, type, mode, owner, link, content digest; whiteouts as written), so a merged
 * tree is replayed from them instead of decompressing the layer again. The layer a build
 * packs records its facts as it is packed; a layer read from elsewhere, the first time it
 * is read.
 *
 * The key hashes the layer's diffId with the format and gantry's version: a diffId names the
 * layer's content exactly, so its facts never change; another gantry may read layers
 * differently, so its facts are its own. A file starts with a line holding the sha256 of the
 * rest: a damaged or cut file is a miss (and is written again), never wrong facts.
 */

const FACTS_FORMAT = "gantry layer facts 1";

interface Header { format: string; sha256: Digest; entries: number }

/**
 * The layer facts index in `root` (`<cache>/facts`), by diffId. load() is a miss (undefined) for a
 * file that is missing, damaged or of another format, and marks a hit used; save() replaces a file atomically.
 */
export class LayerFactsIndex implements FactsStore {
  constructor(readonly root: string) {}

  pathOf(diffId: Digest): string {
    const key = sha256(`${FACTS_FORMAT}\n${gantryVersion()}\n${diffId}`);
    return join(this.root, `${digestHex(key)}.json`);
  }

  async load(diffId: Digest): Promise<LayerFacts | undefined> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.pathOf(diffId));
    } catch {
      return undefined;
    }
    const newline = bytes.indexOf(0x0a);
    if (newline < 0) return undefined;
    const body = bytes.subarray(newline + 1);
    try {
      const header = JSON.parse(bytes.subarray(0, newline).toString("utf8")) as Partial<Header>;
      if (header.format !== FACTS_FORMAT || header.sha256 !== sha256(body)) return undefined;
      const facts = factsFromRecords(JSON.parse(body.toString("utf8")));
      if (facts === undefined || facts.length !== header.entries) return undefined;
      await touchUsed(this.pathOf(diffId));
      return facts;
    } catch {
      return undefined;
    }
  }

  async save(diffId: Digest, facts: LayerFacts): Promise<void> {
    const body = Buffer.from(JSON.stringify(factRecords(facts)));
    const header: Header = { format: FACTS_FORMAT, sha256: sha256(body), entries: facts.length };
    await mkdir(this.root, { recursive: true });
    await writeFileAtomically(this.pathOf(diffId), (temp) => writeFile(temp, Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), body])));
  }
}
