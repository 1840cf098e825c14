import { join } from "node:path";
import { digestHex, sha256, type Digest } from "../model/digest.js";
import type { LookupAnswers, LookupJournalStore } from "../layer/below-tree.js";
import { gantryVersion } from "./versions.js";
import { readSealed, writeSealed } from "./sealed-file.js";

/**
 * The lookup journals (layer/below-tree.ts): `<cache>/lookups/<key>.json` holds the answers
 * the merged tree of one chain of layers gave to comparisons, as `[question, answer]`
 * pairs, sealed (sealed-file.ts). The key hashes the chain of diffIds with the format and
 * gantry's version: the chain fixes the tree, so its answers never change; another gantry
 * may resolve paths differently, so its answers are its own. Concurrent builds each write
 * the whole file atomically: every answer of either is true.
 */

const JOURNAL_FORMAT = "gantry lookup journal 1";

/** The lookup journals in `root` (`<cache>/lookups`), by chain. */
export class LookupJournals implements LookupJournalStore {
  constructor(readonly root: string) {}

  pathOf(chain: readonly Digest[]): string {
    const key = sha256(`${JOURNAL_FORMAT}\n${gantryVersion()}\n${chain.join(",")}`);
    return join(this.root, `${digestHex(key)}.json`);
  }

  async load(chain: readonly Digest[]): Promise<LookupAnswers | undefined> {
    const sealed = await readSealed(this.pathOf(chain), JOURNAL_FORMAT);
    if (sealed === undefined || !Array.isArray(sealed.body)) return undefined;
    const answers: LookupAnswers = new Map();
    for (const pair of sealed.body as unknown[]) {
      if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== "string") return undefined;
      answers.set(pair[0], pair[1] as LookupAnswers extends Map<string, infer A> ? A : never);
    }
    return answers;
  }

  async save(chain: readonly Digest[], answers: LookupAnswers): Promise<void> {
    await writeSealed(this.pathOf(chain), JOURNAL_FORMAT, [...answers]);
  }
}
