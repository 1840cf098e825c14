import { spawn } from "node:child_process";
import { RuntimeError, AbortedError } from "../model/errors.js";
import { OutputTail } from "./output-tail.js";

/** How runCaptured starts a child: where, with what environment, and how to stop it. */
export interface RunOptions {
  /** The child's working directory; this process's when unset. */
  cwd?: string;
  /** The child's whole environment; nothing of this process's is inherited. */
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Called instead of killing the child when `signal` fires (e.g. `runc kill`); the child is killed after it anyway. */
  onAbort?: () => Promise<void>;
}

/** How a child ended, with the last lines it wrote. */
export interface RunResult {
  /** Exit status, or undefined when the process was killed by a signal. */
  status: number | undefined;
  /** The signal that killed it, if one did. */
  killedBy: NodeJS.Signals | undefined;
  /** The last lines of stdout and stderr, interleaved as they arrived. */
  tail: OutputTail;
  /** The last lines of standard error alone: runc copies a container's stdout and stderr
   *  in separate goroutines, so in the interleaved tail a script's last error message can
   *  arrive before, and be pushed out by, its earlier ordinary output. */
  errors: OutputTail;
}

/** How many of the last stderr lines an error message always shows. */
const ERROR_LINES_KEPT = 5;

/**
 * Runs a program with no standard input; its output is kept as tails (stdout and stderr
 * in the order they arrive, and stderr alone), never printed: the library does not write
 * to the terminal.
 */
export function runCaptured(command: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const tail = new OutputTail();
    const errors = new OutputTail(ERROR_LINES_KEPT);
    const child = spawn(command, [...args], { cwd: opts.cwd, env: opts.env, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.on("data", (c: Buffer) => tail.write(c));
    child.stderr.on("data", (c: Buffer) => { tail.write(c); errors.write(c); });
    const onAbort = (): void => {
      const stop = opts.onAbort ?? (() => Promise.resolve());
      void stop().finally(() => child.kill("SIGKILL"));
    };
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    child.on("error", (err) => {
      opts.signal?.removeEventListener("abort", onAbort);
      reject(new RuntimeError(`${command} cannot be started: ${err.message}`, { cause: err }));
    });
    child.on("close", (code, killedBy) => {
      opts.signal?.removeEventListener("abort", onAbort);
      if (opts.signal?.aborted) {
        reject(new AbortedError(opts.signal.reason));
        return;
      }
      resolve({ status: code ?? undefined, killedBy: killedBy ?? undefined, tail, errors });
    });
  });
}

/** Throws the one-line RuntimeError of a script that did not exit 0: `what` names it (e.g. "the runAsRoot script"). */
export function checkScriptResult(what: string, result: RunResult): void {
  if (result.status === 0) return;
  const how = result.status !== undefined ? `exited with status ${result.status}` : `was killed by ${result.killedBy ?? "a signal"}`;
  const shown = result.tail.tail();
  const unshownErrors = result.errors.tail().filter((line) => !shown.includes(line));
  const errors = unshownErrors.length > 0 ? `; its last errors: ${OutputTail.join(unshownErrors)}` : "";
  throw new RuntimeError(`${what} ${how}; its last output: ${result.tail.oneLine()}${errors}`);
}
