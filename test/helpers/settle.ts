import { lstat, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * Waits until files written so far in `dir` are older than the layer index's racy window
 * (cache/stat-index.ts): 100 ms where ctimes have a sub-second part, 2 s where the file
 * system stamps whole seconds. Without it, a build right after writing its sources hashes
 * them again next time rather than trust their fingerprints.
 */
export async function settle(dir: string): Promise<void> {
  const probe = join(dir, `.settle-${process.pid}`);
  await writeFile(probe, "");
  const { ctimeNs } = await lstat(probe, { bigint: true });
  await rm(probe);
  await sleep(ctimeNs % 1_000_000_000n === 0n ? 2_100 : 150);
}
