import type { HostIdRange } from "./subordinate-ids.js";

/**
 * The ids of a user namespace that makes an ordinary user root: the user's own uid and gid
 * become 0 inside, and its subordinate ranges (if any) become 1, 2, ... in file order. The
 * kernel translates every owner through these lines, both ways: a file owned by host uid
 * 100999 under `1 100000 65536` is owned by 1000 inside, and a chown to 1000 inside
 * stores 100999 on disk. An id no line covers does not exist inside.
 */

/** One line of /proc/PID/uid_map or gid_map: `count` ids from `inside` are host ids from `outside`. */
export interface IdMapLine {
  inside: number;
  outside: number;
  count: number;
}

/** The uid and gid maps of one user namespace, as mappingFor makes them. */
export interface IdMapping {
  uids: IdMapLine[];
  gids: IdMapLine[];
}

/**
 * Linux before 4.15 takes at most 5 lines per map; newer kernels 340. Five (the user and
 * four subordinate ranges) is enough for any /etc/subuid seen in practice.
 */
const MAX_LINES = 5;

/** The map of one kind of id: `self` to 0, then each range that does not hold `self`. */
function linesFor(self: number, ranges: readonly HostIdRange[]): IdMapLine[] {
  const lines: IdMapLine[] = [{ inside: 0, outside: self, count: 1 }];
  let next = 1;
  for (const r of ranges) {
    if (lines.length === MAX_LINES) break;
    if (self >= r.first && self < r.first + r.count) continue; // the user's own id is mapped once, to 0
    lines.push({ inside: next, outside: r.first, count: r.count });
    next += r.count;
  }
  return lines;
}

/** The mapping for host user `uid`:`gid` with these subordinate ranges (none: a single-id map). */
export function mappingFor(uid: number, gid: number, subuids: readonly HostIdRange[], subgids: readonly HostIdRange[]): IdMapping {
  return { uids: linesFor(uid, subuids), gids: linesFor(gid, subgids) };
}

/** Whether id `inside` exists in the namespace. */
export function isMappedInside(lines: readonly IdMapLine[], inside: number): boolean {
  return lines.some((l) => inside >= l.inside && inside < l.inside + l.count);
}

/** Whether the map is the user alone (no subordinate range). */
export function isSingleId(lines: readonly IdMapLine[]): boolean {
  return lines.length === 1;
}

/** The ids that exist inside, for a message: "0-65536". */
export function describeInside(lines: readonly IdMapLine[]): string {
  const last = lines.reduce((max, l) => Math.max(max, l.inside + l.count - 1), 0);
  return last === 0 ? "0" : `0-${last}`;
}

/** The text the kernel takes in /proc/PID/uid_map or gid_map. */
export function mapFileText(lines: readonly IdMapLine[]): string {
  return lines.map((l) => `${l.inside} ${l.outside} ${l.count}`).join("\n") + "\n";
}

/** newuidmap/newgidmap's arguments after the pid: `inside outside count` per line. */
export function mapArguments(lines: readonly IdMapLine[]): string[] {
  return lines.flatMap((l) => [String(l.inside), String(l.outside), String(l.count)]);
}
