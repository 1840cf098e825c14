import { spawn } from "node:child_process";
import { GantryError, RuntimeError } from "../model/errors.js";
import { OutputTail } from "./output-tail.js";

export interface RunOptions {
  cwd?: string;
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Called instead of killing the child when `signal` fires (e.g. `runc kill`); the child is killed after it anyway. */
  onAbort?: () => Promise<void>;
}

export interface RunResult {
  /** Exit status, or undefined when the process was killed by a signal. */
  status: number | undefined;
  /** The signal that killed it, if one did. */
  killedBy: NodeJS.Signals | undefined;
  tail: OutputTail;
}

/**
 * Runs a program with no standard input and its output (stdout and stderr, interleaved)
 * kept as a tail, never printed: the library does not write to the terminal.
 */
export function runCaptured(command: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const tail = new OutputTail();
    // One pipe for both streams keeps their lines in the order they were written; the
    // host's /bin/sh makes stderr a copy of stdout before starting the program.
    const child = spawn("/bin/sh", ["-c", 'exec "$@" 2>&1', "gantry", command, ...args], {
      cwd: opts.cwd, env: opts.env, stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout.on("data", (c: Buffer) => tail.write(c));
    child.stderr.on("data", (c: Buffer) => tail.write(c));
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
        reject(new GantryError("ABORTED", "the operation was aborted", { cause: opts.signal.reason }));
        return;
      }
      resolve({ status: code ?? undefined, killedBy: killedBy ?? undefined, tail });
    });
  });
}

/** Throws the one-line RuntimeError of a script that did not exit 0: `what` names it (e.g. "the runAsRoot script"). */
export function checkScriptResult(what: string, result: RunResult): void {
  if (result.status === 0) return;
  const how = result.status !== undefined ? `exited with status ${result.status}` : `was killed by ${result.killedBy ?? "a signal"}`;
  throw new RuntimeError(`${what} ${how}; its last output: ${result.tail.oneLine()}`);
}
