import { join } from "node:path";
import { digestHex, sha256, type Digest } from "../model/digest.js";
import { factRecord, factsFromRecords, type FactList, type LayerFacts } from "../layer/apply-layer.js";
import type { FactsStore } from "../layer/merged-tree.js";
import { gantryVersion } from "./versions.js";
import { readSealed, writeSealedRecords } from "./sealed-file.js";

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
    const sealed = await readSealed(this.pathOf(diffId), FACTS_FORMAT);
    if (sealed === undefined) return undefined;
    const facts = factsFromRecords(sealed.body);
    return facts !== undefined && facts.length === sealed.header.entries ? facts : undefined;
  }

  async save(diffId: Digest, facts: FactList): Promise<void> {
    await writeSealedRecords(this.pathOf(diffId), FACTS_FORMAT, facts, factRecord, { entries: facts.length });
  }
}
