import { Worker } from "node:worker_threads";

/**
 * One worker thread started with the command, before the command knows whether it wants it.
 *
 * A worker takes 60-100 ms to start here (node's own start in a new thread, then its
 * script), and the walk that wants one most, the lstat walk of a big tree that a rebuild makes
 * to find its sources unchanged (source-snapshot.ts), begins about 0.1 s into the command: a
 * worker started by that walk joined it when it was half done, and two threads walked the
 * app's 35,000 entries no faster than one. Started by the launcher (src/cli/launch.ts), it is
 * ready when the walk begins.
 *
 * The worker runs its script, which must wait for a message before it works. Whoever would
 * start a worker of the same script takes this one instead; once the command has work that no
 * such worker will share (a layer to walk in full or to pack), it releases it, so that an
 * idle thread does not hold memory through a big build. Until taken the worker is unref'd:
 * it never keeps the command alive.
 *
 * The launcher and the CLI are separate bundles, each with its own copy of this module: the
 * worker is handed over through a global.
 */

const HANDOVER = Symbol.for("gantry.prestarted-worker");

interface Prestarted {
  /** The href of the script the worker runs. */
  script: string;
  worker: Worker;
  /** False once it failed or exited before it was taken. */
  alive: boolean;
}

const slot = globalThis as { [HANDOVER]?: Prestarted };

/** Starts a worker on `script`, for takePrestartedWorker. Best effort: undefined if node refuses. */
export function prestartWorker(script: URL): Worker | undefined {
  let worker: Worker;
  try {
    worker = new Worker(script, { execArgv: [] });
  } catch {
    return undefined;
  }
  const held: Prestarted = { script: script.href, worker, alive: true };
  const dead = (): void => {
    held.alive = false;
  };
  // A listener for "error" also keeps a failed start from throwing where nobody asked for the worker.
  worker.once("error", dead).once("exit", dead);
  worker.unref();
  releasePrestartedWorker(); // one at a time
  slot[HANDOVER] = held;
  return worker;
}

/**
 * The prestarted worker if it runs `script` and is alive, now the caller's: it keeps the
 * command alive again until it exits. Undefined otherwise (start one as usual).
 */
export function takePrestartedWorker(script: URL): Worker | undefined {
  const held = slot[HANDOVER];
  if (held === undefined || held.script !== script.href) return undefined;
  delete slot[HANDOVER];
  if (!held.alive) return undefined;
  held.worker.ref();
  return held.worker;
}

/** Ends the prestarted worker if nobody took it. */
export function releasePrestartedWorker(): void {
  const held = slot[HANDOVER];
  if (held === undefined) return;
  delete slot[HANDOVER];
  void held.worker.terminate();
}
