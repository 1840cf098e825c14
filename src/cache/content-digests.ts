import { basename, dirname } from "node:path";
import type { Digest } from "../model/digest.js";
import { throwIfAborted } from "../model/errors.js";
import { hashFileSync } from "../layer/hash-file.js";
import type { SourceSpec, SourceTree } from "../layer/sources.js";
import { READ_CHUNK } from "../util/io.js";
import type { DirectoryTable, StatIndex } from "./stat-index.js";

/** Bytes hashed between two looks at the event loop (and the abort signal). */
const YIELD_EVERY_BYTES = 32 * 1024 * 1024;

export interface ContentDigests {
  /** Image path of every regular file of the tree → the sha256 of its bytes. */
  digests: Map<string, Digest>;
  /** Files read and hashed (not vouched for by the stat index). */
  hashed: number;
}

/**
 * The content digest of every regular file of a walked tree: from the stat index where the
 * file's fingerprint is unchanged, else read and hashed (and recorded). Each host file is
 * hashed at most once, however many image paths it fills.
 */
export async function contentDigests(tree: SourceTree, sources: readonly SourceSpec[], stat: StatIndex | undefined, signal?: AbortSignal): Promise<ContentDigests> {
  const digests = new Map<string, Digest>();
  const byHostPath = new Map<string, Digest>();
  const chunk = Buffer.allocUnsafe(READ_CHUNK);
  const tables = new Map<string, DirectoryTable>();
  let hashed = 0;
  let sinceYield = 0;
  for (const [path, node] of tree.entries()) {
    if (node.type !== "file" || node.hostPath === undefined) continue;
    const host = node.hostPath;
    let digest = byHostPath.get(host);
    if (digest === undefined) {
      const fingerprint = tree.fingerprints.get(path);
      const place = fingerprint === undefined || stat === undefined ? undefined : statPlace(host, sources);
      let table: DirectoryTable | undefined;
      if (place !== undefined) {
        table = tables.get(place.dir);
        if (table === undefined) tables.set(place.dir, table = await stat!.table(place.dir));
        digest = table.lookup(place.path, fingerprint!);
      }
      if (digest === undefined) {
        const hashedAtNs = BigInt(Date.now()) * 1_000_000n;
        digest = hashFileSync(host, chunk);
        hashed++;
        if (place !== undefined) table!.record(place.path, fingerprint!, digest, hashedAtNs);
        sinceYield += node.size;
        if (sinceYield >= YIELD_EVERY_BYTES) {
          sinceYield = 0;
          await new Promise((resolve) => setImmediate(resolve));
          throwIfAborted(signal);
        }
      }
      byHostPath.set(host, digest);
    }
    digests.set(path, digest);
  }
  return { digests, hashed };
}

/**
 * Where the stat index keeps a host file: the source directory it was walked from (the
 * deepest one holding it) and its path below that; a source that is one file is kept in its
 * parent's table. Undefined for a name a line of the index cannot hold (a newline or NUL).
 */
function statPlace(hostPath: string, sources: readonly SourceSpec[]): { dir: string; path: string } | undefined {
  if (/[\n\0]/.test(hostPath)) return undefined;
  let best: string | undefined;
  for (const { from } of sources) {
    if (hostPath.startsWith(`${from}/`) && (best === undefined || from.length > best.length)) best = from;
  }
  if (best !== undefined) return { dir: best, path: hostPath.slice(best.length + 1) };
  return { dir: dirname(hostPath), path: basename(hostPath) };
}
