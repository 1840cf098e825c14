import { mkdtemp, readdir, rm } from "node:fs/promises";
import { createHash } from "node:crypto";
import { hostname } from "node:os";
import { join } from "node:path";

/**
 * Names of temporary files and directories that say who made them, so that what a killed
 * gantry left behind is removed by the next one, and nothing else is.
 *
 * Every temporary name is `PREFIX` + `HOST-PID-` + something random, where HOST is a short
 * hash of this machine's name. SIGKILL (the OOM killer, a CI timeout) gives a process no
 * chance to clean up, so before making a temporary name beside others of the same prefix,
 * gantry removes those made on this machine by a process that no longer exists. A live
 * process's temporaries, and another machine's on a shared file system, are never touched.
 */

const HOST_TAG = createHash("sha256").update(hostname()).digest("hex").slice(0, 6);

/** `HOST-PID-`: what follows a prefix in every temporary name this process makes. */
export function ownerTag(): string {
  return `${HOST_TAG}-${process.pid}-`;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, as another user's process.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Whether `name` (after `prefix`) is a temporary of a dead process of this machine. */
export function isStale(name: string, prefix: string): boolean {
  if (!name.startsWith(prefix)) return false;
  const match = /^([0-9a-f]{6})-(\d+)-/.exec(name.slice(prefix.length));
  if (match === null || match[1] !== HOST_TAG) return false;
  const pid = Number(match[2]);
  return pid !== process.pid && !isAlive(pid);
}

/**
 * Removes what dead gantry processes of this machine left in `dir` under `prefix`. Best
 * effort: a directory that cannot be listed, or an entry that cannot be removed, is left.
 */
export async function sweepStale(dir: string, prefix: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  await Promise.all(names.filter((n) => isStale(n, prefix)).map((n) => rm(join(dir, n), { recursive: true, force: true }).catch(() => {})));
}

/** A new temporary directory `DIR/PREFIX+HOST-PID-XXXXXX`, after sweeping the stale ones of that prefix. */
export async function makeTempDir(dir: string, prefix: string): Promise<string> {
  await sweepStale(dir, prefix);
  return mkdtemp(join(dir, `${prefix}${ownerTag()}`));
}
