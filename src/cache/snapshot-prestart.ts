import { existsSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { defaultCacheDir } from "./location.js";
import { prestartWorker } from "../util/prestarted-worker.js";
import { workerScript } from "../util/worker-script.js";

/**
 * When the gantry command starts a source snapshot's second thread ahead of the build
 * (src/util/prestarted-worker.ts), apart from source-snapshot.ts so that the launcher names
 * it without bundling the snapshot's code.
 *
 * A thread takes 60-100 ms to start here, and a rebuild's lstat walk of a big tree wants its
 * second thread as the walk begins, about 0.1 s into the command. But a thread started by a
 * build that does not want it costs that build 14-25 ms (loading node's worker_threads, the
 * thread's start beside the command's, its end). So it is started only while the cache says
 * that the last build walked a tree on several threads (the same spec, as a rule, in an
 * edit-build loop): a file in the snapshots directory, kept by SourceSnapshots.
 */

// Spelled from the cache folder so that it resolves the same from the CLI's bundles (dist/src/cli).
export const SNAPSHOT_WORKER_URL = workerScript(new URL("../cache/snapshot-worker.js", import.meta.url));

/** In `<cache>/snapshots` while the last build there made or matched a snapshot big enough for several threads. */
const THREADS_WANTED = "threads-wanted";

/**
 * For the launcher: starts the snapshot's second thread if `args` (the command's arguments)
 * are a build that uses the cache, `threads` (the cores) are more than one, and the cache
 * says the last build wanted one. Whether it did.
 */
export function prestartSnapshotThread(args: readonly string[], threads: number, env: NodeJS.ProcessEnv = process.env): boolean {
  if (threads < 2 || !args.includes("build") || args.includes("--no-cache")) return false;
  if (!existsSync(join(defaultCacheDir(env), "snapshots", THREADS_WANTED))) return false;
  return prestartWorker(SNAPSHOT_WORKER_URL) !== undefined;
}

/** Records in snapshots directory `root` whether this build wanted several threads for a snapshot. Best effort. */
export async function rememberThreadsWanted(root: string, wanted: boolean): Promise<void> {
  const path = join(root, THREADS_WANTED);
  try {
    if (!wanted) await rm(path, { force: true });
    else if (!existsSync(path)) {
      await mkdir(root, { recursive: true });
      await writeFile(path, "");
    }
  } catch {
    // A missed hint costs the next build only its head start.
  }
}
