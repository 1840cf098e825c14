import { test, type TestContext, type TestOptions } from "node:test";
import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { readFile, writeFile, mkdtemp, rm } from "node:fs/promises";
import { delimiter, isAbsolute, join } from "node:path";
import { tmpdir } from "node:os";
import { randomBytes } from "node:crypto";
import type { Readable } from "node:stream";

/**
 * Running peer tools from tests. A peer that is absent (or needs root that we do
 * not have) throws PeerUnavailable; tests declared with `peerTest` turn that into
 * a clean skip, so a developer without the peers still gets a green run, while CI,
 * which installs them all, runs everything.
 */

export class PeerUnavailable extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = "PeerUnavailable";
  }
}

const found = new Map<string, boolean>();

/** Whether `tool` (a name looked up on PATH, or an absolute path) is an executable here. */
export function have(tool: string): boolean {
  const known = found.get(tool);
  if (known !== undefined) return known;
  const candidates = isAbsolute(tool)
    ? [tool]
    : (process.env["PATH"] ?? "").split(delimiter).filter(Boolean).map((dir) => join(dir, tool));
  const ok = candidates.some((path) => {
    try { accessSync(path, constants.X_OK); return true; } catch { return false; }
  });
  found.set(tool, ok);
  return ok;
}

/** Throws PeerUnavailable unless every tool is installed. */
export function requireTools(...tools: string[]): void {
  const missing = tools.filter((tool) => !have(tool));
  if (missing.length > 0) throw new PeerUnavailable(`not installed: ${missing.join(", ")}`);
}

/** Throws PeerUnavailable unless we run as root (umoci unpack, runc and dockerd need it). */
export function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new PeerUnavailable("needs root");
}

/**
 * `test()` whose body may throw PeerUnavailable, reported as a skip naming what is
 * missing instead of a failure. Any other error fails the test as usual.
 */
export function peerTest(name: string, fn: (t: TestContext) => Promise<void>): void;
export function peerTest(name: string, options: TestOptions, fn: (t: TestContext) => Promise<void>): void;
export function peerTest(
  name: string,
  optionsOrFn: TestOptions | ((t: TestContext) => Promise<void>),
  maybeFn?: (t: TestContext) => Promise<void>,
): void {
  const options = typeof optionsOrFn === "function" ? {} : optionsOrFn;
  const fn = typeof optionsOrFn === "function" ? optionsOrFn : maybeFn;
  if (!fn) throw new TypeError(`peerTest "${name}" has no body`);
  test(name, options, async (t) => {
    try {
      await fn(t);
    } catch (err) {
      if (!(err instanceof PeerUnavailable)) throw err;
      t.skip(err.reason);
    }
  });
}

export interface RunOptions {
  cwd?: string;
  /** Replaces the environment; a key set to undefined is removed. Default: inherit. */
  env?: NodeJS.ProcessEnv;
  /** Written to the child's standard input (which is closed afterwards). */
  input?: Buffer | string | Readable;
  /** Killed (SIGKILL) after this long; default 120 s. */
  timeoutMs?: number;
  /** Return non-zero exits instead of throwing. */
  allowFailure?: boolean;
}

export interface RunResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

export class CommandFailed extends Error {
  constructor(readonly command: string, readonly result: RunResult) {
    super(`${command} exited ${result.code}: ${tail(result.stderr || result.stdout.toString("utf8"))}`);
    this.name = "CommandFailed";
  }
}

function tail(text: string, lines = 15): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

function describeCommand(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(" ");
}

/**
 * Runs `cmd args` to completion and collects its output. Throws CommandFailed on a
 * non-zero exit (unless allowFailure), on a signal, or on timeout, quoting stderr.
 */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const command = describeCommand(cmd, args);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; child.kill("SIGKILL"); }, opts.timeoutMs ?? 120_000);
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => err.push(c));
    // A child that exits without reading all its input is not our failure to report.
    child.stdin.on("error", () => {});
    child.on("error", (e) => { clearTimeout(timer); reject(new Error(`${command} could not start: ${e.message}`)); });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const result: RunResult = { code: code ?? -1, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString("utf8") };
      if (timedOut) reject(new CommandFailed(`${command} (timed out after ${opts.timeoutMs ?? 120_000} ms)`, result));
      else if (signal) reject(new CommandFailed(`${command} (killed by ${signal})`, result));
      else if (code !== 0 && !opts.allowFailure) reject(new CommandFailed(command, result));
      else resolve(result);
    });
    const input = opts.input;
    if (input === undefined) child.stdin.end();
    else if (typeof input === "string" || Buffer.isBuffer(input)) child.stdin.end(input);
    else input.pipe(child.stdin);
  });
}

/** `skopeo ARGS`, returning its standard output as text. */
export async function skopeo(...args: string[]): Promise<string> {
  requireTools("skopeo");
  return (await run("skopeo", args)).stdout.toString("utf8");
}

/** `skopeo ARGS` whose output is JSON (inspect, inspect --raw, inspect --config). */
export async function skopeoJson<T = Record<string, unknown>>(...args: string[]): Promise<T> {
  return JSON.parse(await skopeo(...args)) as T;
}

/** `umoci unpack --image LAYOUT:TAG BUNDLE`: a runtime bundle with the image's files in BUNDLE/rootfs. */
export async function umociUnpack(layoutRef: string, bundle: string): Promise<void> {
  requireTools("umoci");
  requireRoot();
  await run("umoci", ["unpack", "--image", layoutRef, bundle]);
}

/**
 * Runs a bundle made by umociUnpack with runc and returns what the process printed.
 * The terminal is switched off (no TTY under the test runner); state lives in a
 * private --root, and the container id is unique, so runs never collide.
 */
export async function runcRun(bundle: string, opts: { timeoutMs?: number } = {}): Promise<string> {
  requireTools("runc");
  requireRoot();
  const configPath = join(bundle, "config.json");
  const config = JSON.parse(await readFile(configPath, "utf8")) as { process?: { terminal?: boolean } };
  config.process = { ...config.process, terminal: false };
  await writeFile(configPath, JSON.stringify(config, null, 2));
  const state = await mkdtemp(join(tmpdir(), "gantry-runc-"));
  const id = `gantry-test-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    const result = await run("runc", ["--root", state, "run", "--bundle", bundle, id], {
      timeoutMs: opts.timeoutMs ?? 60_000,
    });
    return result.stdout.toString("utf8");
  } finally {
    await run("runc", ["--root", state, "delete", "--force", id], { allowFailure: true });
    await rm(state, { recursive: true, force: true });
  }
}

/**
 * Unpacks any image skopeo can read (`docker-archive:X.tar`, `oci:DIR:TAG`, ...) the
 * way a runtime would see it: `skopeo copy SRC oci:WORK/layout:t`, then
 * `umoci unpack` into WORK/bundle. Returns the bundle and its rootfs.
 */
export async function unpackWithPeers(srcRef: string, workDir: string): Promise<{ bundle: string; rootfs: string }> {
  requireTools("skopeo", "umoci");
  requireRoot();
  const layout = join(workDir, "layout");
  const bundle = join(workDir, "bundle");
  await skopeo("copy", "--quiet", srcRef, `oci:${layout}:t`);
  await umociUnpack(`${layout}:t`, bundle);
  return { bundle, rootfs: join(bundle, "rootfs") };
}
