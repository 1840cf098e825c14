import { userInfo } from "node:os";
import { RuntimeError } from "../model/errors.js";
import { findProgram } from "./find-program.js";
import { describeInside, mappingFor, type IdMapping } from "./id-map.js";
import { SUBGID_FILE, SUBUID_FILE, readSubordinateIds } from "./subordinate-ids.js";
import type { NamespaceTools } from "./user-namespace.js";

/**
 * Which user namespace runAsRoot gets when gantry is not root. With subordinate ranges in
 * /etc/subuid and /etc/subgid (and newuidmap/newgidmap installed), the user becomes 0 and
 * the ranges 1, 2, ...: the owners of an ordinary image exist inside. Without them, only
 * the user itself is mapped (to 0), which needs no helper and no administrator, but leaves
 * every other owner unrepresentable; `note` says so in one line for the progress output.
 */
export interface RootlessNamespace {
  tools: NamespaceTools;
  mapping: IdMapping;
  /** The user's name, for messages. */
  user: string;
  /** One progress line: what the script runs as, and what that limits. */
  note: string;
  /** Why only id 0 is mapped (no ranges, or no newuidmap), when it is. */
  singleIdBecause?: string;
}

/** Whether runAsRoot must make a user namespace: gantry is not root. */
export function needsUserNamespace(): boolean {
  return process.getuid?.() !== 0;
}

/**
 * Reads the user's subordinate ranges and finds the tools.
 * @throws RuntimeError when util-linux unshare is missing.
 */
export async function rootlessNamespace(): Promise<RootlessNamespace> {
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const user = safeUserName(uid);
  const unshare = await findProgram("unshare");
  if (unshare === undefined) {
    throw new RuntimeError("runAsRoot as an ordinary user runs its script in a user namespace, which needs util-linux's unshare; install util-linux or run gantry as root");
  }
  const [subuids, subgids, newuidmap, newgidmap] = await Promise.all([
    readSubordinateIds(SUBUID_FILE, user, uid),
    // newgidmap, like newuidmap, looks the user up by name or by uid (not gid).
    readSubordinateIds(SUBGID_FILE, user, uid),
    findProgram("newuidmap"),
    findProgram("newgidmap"),
  ]);
  const missing = [subuids.length === 0 ? SUBUID_FILE : "", subgids.length === 0 ? SUBGID_FILE : ""].filter(Boolean);
  const helpersMissing = newuidmap === undefined || newgidmap === undefined;
  if (missing.length > 0 || helpersMissing) {
    const why = missing.length > 0
      ? `${user} has no range in ${missing.join(" or ")}`
      : "newuidmap/newgidmap are not installed (apt-get install uidmap)";
    return {
      tools: { unshare },
      mapping: mappingFor(uid, gid, [], []),
      user,
      singleIdBecause: why,
      note: `runAsRoot as the ordinary user ${user}: ${why}, so the script runs as root in a user namespace where only id 0 exists; it sees files of the image owned by other ids as owned by 0 (the layer keeps their owners) and cannot chown to any other id`,
    };
  }
  const mapping = mappingFor(uid, gid, subuids, subgids);
  return {
    tools: { unshare, newuidmap, newgidmap },
    mapping,
    user,
    note: `runAsRoot as the ordinary user ${user}: the script runs as root in a user namespace with uids ${describeInside(mapping.uids)} and gids ${describeInside(mapping.gids)} (${user} and its ranges in ${SUBUID_FILE} and ${SUBGID_FILE}); owners beyond them show as 0 to the script and keep their value in the layer`,
  };
}


/** The user's login name (subuid files name users), or the uid when the password database has none. */
function safeUserName(uid: number): string {
  try {
    return userInfo().username;
  } catch {
    return String(uid);
  }
}
