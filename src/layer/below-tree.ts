import type { Digest } from "../model/digest.js";
import type { Layer } from "../model/image.js";
import type { LowerLookups } from "./differ.js";
import { mergedTree, type FactsStore } from "./merged-tree.js";
import type { FileTree, TreeNode } from "./tree.js";

/**
 * The tree a new layer is compared with, read no more than the comparison needs. A
 * copyToRoot comparison only looks paths up (differ.ts LowerLookups), and the answers are
 * a function of the chain of diffIds below alone. So the answers one build needed are
 * kept, by chain, in a lookup journal; the next build whose comparison asks nothing else
 * (an edit to files that were already there) is answered from it, without replaying the
 * facts of every layer below (tens of thousands of entries under a dependencies layer).
 * A question the journal cannot answer sends the comparison back to the whole tree, whose
 * answers are then added to the journal.
 */

/** Answers to lookups, by question: "g\0PATH" (get), "r\0PATH" (resolveDir), "l\0PATH" (isLinkToDir). */
export type LookupAnswers = Map<string, TreeNode | string | boolean | null>;

/** Where lookup journals are kept between processes, by the chain of diffIds they describe. */
export interface LookupJournalStore {
  load(chain: readonly Digest[]): Promise<LookupAnswers | undefined>;
  save(chain: readonly Digest[], answers: LookupAnswers): Promise<void>;
}

/** A journal holds at most this many answers: beyond it, replaying the facts costs less than reading it. */
const JOURNAL_LIMIT = 20_000;

/** Thrown by a journal asked what it does not know; caught by BelowTree.compare. */
class UnansweredLookup extends Error {}

/** Lookups answered from a journal. */
class JournalLookups implements LowerLookups {
  constructor(private readonly answers: LookupAnswers) {}

  private answer(question: string): TreeNode | string | boolean | null {
    const answer = this.answers.get(question);
    if (answer === undefined) throw new UnansweredLookup(question);
    return answer;
  }

  get(path: string): TreeNode | undefined {
    return (this.answer(`g\0${path}`) as TreeNode | null) ?? undefined;
  }

  resolveDir(path: string): string {
    return this.answer(`r\0${path}`) as string;
  }

  isLinkToDir(path: string): boolean {
    return this.answer(`l\0${path}`) as boolean;
  }
}

/** Lookups answered by the whole tree, each answer written down. */
class RecordingLookups implements LowerLookups {
  constructor(private readonly tree: FileTree, private readonly answers: LookupAnswers) {}

  get(path: string): TreeNode | undefined {
    const node = this.tree.get(path);
    this.answers.set(`g\0${path}`, node ?? null);
    return node;
  }

  resolveDir(path: string): string {
    const resolved = this.tree.resolveDir(path);
    this.answers.set(`r\0${path}`, resolved);
    return resolved;
  }

  isLinkToDir(path: string): boolean {
    const yes = this.tree.isLinkToDir(path);
    this.answers.set(`l\0${path}`, yes);
    return yes;
  }
}

/** How a BelowTree reads the layers and keeps its journal; a fired `signal` rejects with an AbortedError. */
export interface BelowTreeOptions {
  signal?: AbortSignal | undefined;
  facts?: FactsStore | undefined;
  journal?: LookupJournalStore | undefined;
}

/** The merged tree of `layers` for one comparison, whole or through its lookup journal (see above). */
export class BelowTree {
  private whole: Promise<FileTree> | undefined;
  private loadedTree: FileTree | undefined;

  constructor(readonly layers: readonly Layer[], private readonly opts: BelowTreeOptions = {}) {}

  private get chain(): Digest[] {
    return this.layers.map((l) => l.diffId);
  }

  /** The whole merged tree, read once (from the layers' facts where kept); the caller's own copy. */
  tree(): Promise<FileTree> {
    this.whole ??= mergedTree(this.layers, { signal: this.opts.signal, store: this.opts.facts }).then((tree) => (this.loadedTree = tree));
    return this.whole;
  }

  /** The whole tree if tree() has read it, else undefined. */
  loaded(): FileTree | undefined {
    return this.loadedTree;
  }

  /**
   * Runs a comparison that only looks paths up: from the journal when it answers every
   * question, else again against the whole tree, whose answers join the journal. The
   * comparison must have no effect but its result, since it may run twice.
   */
  async compare<T>(comparison: (lower: LowerLookups) => Promise<T>): Promise<T> {
    const journal = this.opts.journal;
    // Nothing below: the empty tree costs nothing to ask.
    if (this.layers.length === 0) return comparison(await this.tree());
    const known = await journal?.load(this.chain).catch(() => undefined);
    if (known !== undefined) {
      try {
        return await comparison(new JournalLookups(known));
      } catch (err) {
        if (!(err instanceof UnansweredLookup)) throw err;
      }
    }
    const answers: LookupAnswers = new Map(known);
    const result = await comparison(new RecordingLookups(await this.tree(), answers));
    if (journal !== undefined && answers.size <= JOURNAL_LIMIT) {
      // A journal that cannot be written costs the next build the whole tree, never this build.
      await journal.save(this.chain, answers).catch(() => {});
    }
    return result;
  }
}
