import { InvalidArgumentError, Option, type Command } from "commander";
import { parsePlatform } from "../model/platform.js";
import type { ProgressListener } from "../model/progress.js";
import { progressView, type ProgressView } from "./progress-view.js";
import type { AccessOptions as RegistryAccess } from "../transports/transport.js";

/** The global flags every command honours (SPEC "Command line"). */
export interface GlobalOptions {
  quiet: boolean;
  /** `--progress`: auto (bars on a terminal, lines elsewhere), tty or plain. */
  progress: "auto" | "tty" | "plain";
  json: boolean;
  tlsVerify: boolean;
  creds?: string;
}

/** The global flags as `cmd` (any command, nested ones included) received them, with their defaults. */
export function globalOptions(cmd: Command): GlobalOptions {
  const o = cmd.optsWithGlobals<{ quiet?: boolean; json?: boolean; tlsVerify?: boolean; creds?: string; progress?: GlobalOptions["progress"] }>();
  const g: GlobalOptions = { quiet: o.quiet === true, progress: o.progress ?? "auto", json: o.json === true, tlsVerify: o.tlsVerify !== false };
  if (o.creds !== undefined) g.creds = o.creds;
  return g;
}

/**
 * Fired by SIGINT/SIGTERM (main.ts): every command passes it to the library, which stops,
 * removes its temporary files and leaves the destination as it was.
 */
export const interruption = new AbortController();

/** What every library call of a command takes from the command line: --creds, --tls-verify, and the interruption signal. */
export function runOptions(g: GlobalOptions): Pick<RegistryAccess, "creds" | "tlsVerify" | "signal"> {
  const o: Pick<RegistryAccess, "creds" | "tlsVerify" | "signal"> = { tlsVerify: g.tlsVerify, signal: interruption.signal };
  if (g.creds !== undefined) o.creds = g.creds;
  return o;
}

let view: ProgressView | undefined;

/**
 * Progress goes to stderr only: live bars on a terminal, one line per step elsewhere,
 * nothing with --quiet.
 */
export function progressPrinter(g: GlobalOptions): ProgressListener {
  const tty = g.progress === "tty" || (g.progress === "auto" && process.stderr.isTTY === true);
  view = progressView(g.quiet ? "quiet" : tty ? "tty" : "plain");
  return view.listener;
}

/** Clears live bars before the last line (a result or an error) is written. */
export function stopProgress(): void {
  view?.stop();
}

/** Stdout carries only requested data. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Writes one line of requested data to stdout. */
export function printLine(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** Parses a flag's true/1/yes or false/0/no (any case); anything else is a usage error (InvalidArgumentError). */
export function parseBoolFlag(value: string): boolean {
  if (/^(true|1|yes)$/i.test(value)) return true;
  if (/^(false|0|no)$/i.test(value)) return false;
  throw new InvalidArgumentError(`expected true or false, got "${value}"`);
}

/** `--platform os/arch[/variant]`, checked as it is parsed (a bad one is a usage error). */
export function platformOption(what = "which image of a multi-platform source (default: this machine's)"): Option {
  return new Option("--platform <os/arch[/variant]>", what).argParser((value: string) => {
    if (!parsePlatform(value)) throw new InvalidArgumentError(`"${value}" is not OS/ARCH[/VARIANT], e.g. linux/arm64`);
    return value;
  });
}
