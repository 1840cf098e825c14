import { spawn, type ChildProcessByStdio } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { CLI_PATH } from "./paths.js";
import { run, type RunResult } from "./tools.js";

/**
 * The gantry command line as users run it: `node dist/src/cli/gantry.mjs ARGS`.
 *
 * The environment is the test process's, made hermetic: SOURCE_DATE_EPOCH,
 * GANTRY_DEBUG and the user's cache are dropped (a developer's settings must not
 * change results), and GANTRY_CACHE points at a cache private to this test
 * process unless the caller sets one. `opts.env` is laid on top; a key set to
 * undefined is removed.
 */

export interface GantryOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: Buffer;
  timeoutMs?: number;
  /**
   * A command that runs gantry, e.g. ["taskset", "-c", "0"] or
   * ["sh", "-c", 'umask 077 && exec "$@"', "sh"]: the node command line is appended.
   */
  prefix?: string[];
}

export type GantryResult = RunResult;

let processCache: string | undefined;
function defaultCache(): string {
  if (!processCache) {
    const dir = mkdtempSync(join(tmpdir(), "gantry-cache-"));
    processCache = dir;
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  }
  return processCache;
}

export function gantryEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, GANTRY_CACHE: defaultCache() };
  delete env["SOURCE_DATE_EPOCH"];
  delete env["GANTRY_DEBUG"];
  delete env["XDG_CACHE_HOME"];
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

function requireCli(): void {
  if (!existsSync(CLI_PATH)) {
    throw new Error(`the gantry CLI is not built at ${CLI_PATH}: run \`npm run build\` first`);
  }
}

/** Runs gantry to completion; never throws for a non-zero exit (tests assert on `code`). */
export async function runGantry(args: string[], opts: GantryOptions = {}): Promise<GantryResult> {
  requireCli();
  const [cmd = process.execPath, ...cmdArgs] = [...(opts.prefix ?? []), process.execPath, CLI_PATH, ...args];
  return run(cmd, cmdArgs, {
    allowFailure: true,
    env: gantryEnv(opts.env),
    timeoutMs: opts.timeoutMs ?? 180_000,
    ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    ...(opts.input !== undefined ? { input: opts.input } : {}),
  });
}

/**
 * Starts gantry with its stdout as a stream, for piping it into another process
 * (`gantry build x.json -o - | docker load`). stderr is collected.
 */
export function spawnGantry(args: string[], opts: Omit<GantryOptions, "input" | "timeoutMs" | "prefix"> = {}): {
  child: ChildProcessByStdio<Writable, Readable, Readable>;
  done: Promise<{ code: number; stderr: string }>;
} {
  requireCli();
  const child = spawn(process.execPath, [CLI_PATH, ...args], {
    cwd: opts.cwd,
    env: gantryEnv(opts.env),
    stdio: ["pipe", "pipe", "pipe"],
  });
  child.stdin.end();
  const err: Buffer[] = [];
  child.stderr.on("data", (c: Buffer) => err.push(c));
  const done = new Promise<{ code: number; stderr: string }>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stderr: Buffer.concat(err).toString("utf8") }));
  });
  return { child, done };
}

function shellQuote(arg: string): string {
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * Runs gantry on a pseudo-terminal, as in an interactive shell: `script -qec CMD /dev/null`
 * gives it a terminal for stdin, stdout and stderr, and `stdout` of the result is everything
 * the terminal was sent (escape codes included), in order.
 */
export async function runGantryOnTty(args: string[], opts: Omit<GantryOptions, "input" | "prefix"> = {}): Promise<GantryResult> {
  requireCli();
  const command = [process.execPath, CLI_PATH, ...args].map(shellQuote).join(" ");
  return run("script", ["-qec", command, "/dev/null"], {
    allowFailure: true,
    env: gantryEnv(opts.env),
    timeoutMs: opts.timeoutMs ?? 180_000,
    ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
  });
}
