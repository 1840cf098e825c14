import { basename, dirname } from "node:path";
import type { Digest } from "../model/digest.js";
import type { HostFingerprint, SourceSpec, SourceTree } from "../layer/sources.js";
import { hashFiles } from "./hash-pool.js";
import type { DirectoryTable, StatIndex } from "./stat-index.js";

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
  const tables = new Map<string, DirectoryTable>();
  /** Files the stat index cannot vouch for, each host file once, with where to record it. */
  const toHash = new Map<string, { size: number; table: DirectoryTable | undefined; path: string; fingerprint: HostFingerprint | undefined }>();
  const pending: Array<[imagePath: string, hostPath: string]> = [];
  for (const [path, node] of tree.entries()) {
    if (node.type !== "file" || node.hostPath === undefined) continue;
    const host = node.hostPath;
    const known = byHostPath.get(host);
    if (known !== undefined) {
      digests.set(path, known);
      continue;
    }
    const fingerprint = tree.fingerprints.get(path);
    const place = fingerprint === undefined || stat === undefined ? undefined : statPlace(host, sources);
    let table: DirectoryTable | undefined;
    if (place !== undefined) {
      table = tables.get(place.dir);
      if (table === undefined) tables.set(place.dir, table = await stat!.table(place.dir));
      const digest = table.lookup(place.path, fingerprint!);
      if (digest !== undefined) {
        byHostPath.set(host, digest);
        digests.set(path, digest);
        continue;
      }
    }
    pending.push([path, host]);
    if (!toHash.has(host)) toHash.set(host, { size: node.size, table, path: place?.path ?? "", fingerprint });
  }
  if (toHash.size > 0) {
    const hosts = [...toHash.keys()];
    const hashedAtNs = BigInt(Date.now()) * 1_000_000n;
    const hashed = await hashFiles(hosts.map((path) => ({ path, size: toHash.get(path)!.size })), signal);
    hosts.forEach((host, i) => {
      const digest = hashed[i]!;
      byHostPath.set(host, digest);
      const where = toHash.get(host)!;
      where.table?.record(where.path, where.fingerprint!, digest, hashedAtNs);
    });
  }
  for (const [path, host] of pending) digests.set(path, byHostPath.get(host)!);
  return { digests, hashed: toHash.size };
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
