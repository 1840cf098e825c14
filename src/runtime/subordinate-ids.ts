import { readFile } from "node:fs/promises";

/**
 * The subordinate ids a user may map into a user namespace: the lines of /etc/subuid and
 * /etc/subgid (`NAME_OR_UID:FIRST:COUNT`) that name the user. newuidmap and newgidmap
 * check every range they are asked to map against these files, so gantry reads them to
 * ask for exactly what the administrator granted.
 */

/** A block of host ids: `count` ids from `first`. */
export interface HostIdRange {
  first: number;
  count: number;
}

/** The files shadow's newuidmap and newgidmap read. */
export const SUBUID_FILE = "/etc/subuid";
/** The subordinate gid ranges, which newgidmap checks. */
export const SUBGID_FILE = "/etc/subgid";

/**
 * The ranges of `text` (a subuid or subgid file) granted to the user named `name` or
 * numbered `id`, in file order. Comments, blank lines, malformed lines and empty ranges
 * are skipped, as shadow skips them.
 */
export function parseSubordinateIds(text: string, name: string, id: number): HostIdRange[] {
  const out: HostIdRange[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const [owner, first, count, ...rest] = line.split(":");
    if (rest.length > 0 || owner === undefined || first === undefined || count === undefined) continue;
    if (owner !== name && owner !== String(id)) continue;
    if (!/^\d+$/.test(first) || !/^\d+$/.test(count)) continue;
    const range = { first: Number(first), count: Number(count) };
    if (range.count > 0 && Number.isSafeInteger(range.first + range.count)) out.push(range);
  }
  return out;
}

/** The user's ranges in one file; none when the file is missing or unreadable. */
export async function readSubordinateIds(file: string, name: string, id: number): Promise<HostIdRange[]> {
  const text = await readFile(file, "utf8").catch(() => "");
  return parseSubordinateIds(text, name, id);
}
