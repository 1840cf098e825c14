import { readFile } from "node:fs/promises";
import { spawnSync } from "node:child_process";
import { resolve, sep } from "node:path";

/**
 * Mount points at or below `dir`, deepest first, read from /proc/self/mountinfo
 * (field 5 is the mount point, with spaces and the like octal-escaped).
 */
export async function mountsUnder(dir: string): Promise<string[]> {
  let info: string;
  try {
    info = await readFile("/proc/self/mountinfo", "utf8");
  } catch {
    return []; // not Linux: nothing a peer could have mounted
  }
  const root = resolve(dir);
  const points = info.split("\n")
    .map((line) => line.split(" ")[4])
    .filter((p): p is string => p !== undefined)
    .map((p) => p.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8))))
    .filter((p) => p === root || p.startsWith(root + sep));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/**
 * Lazily unmounts everything below `dir` (dockerd's overlay2 and containerd's
 * shm mounts outlive a daemon that died badly); a no-op when nothing is mounted.
 */
export async function unmountUnder(dir: string): Promise<void> {
  for (const point of await mountsUnder(dir)) {
    spawnSync("umount", ["-l", point], { stdio: "ignore" });
  }
}
