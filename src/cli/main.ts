#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { Command, CommanderError, Option } from "commander";
import { AbortedError, GantryError } from "../model/errors.js";
import { interruption, parseBoolFlag, stopProgress } from "./context.js";
import { registerCommands } from "./commands/index.js";

/**
 * The only place that turns results into exit statuses:
 * 0 done, 1 failed (bad input, network, I/O), 2 usage error.
 */

const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

/** One line, no trailing period doubling, no newlines inside. */
function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, "; ").trim();
}

function reportAndExit(err: unknown): never {
  stopProgress();
  const debug = process.env["GANTRY_DEBUG"] === "1";
  if (err instanceof CommanderError) {
    // Commander already printed help/version; its own errors are usage errors.
    if (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.code === "commander.help") process.exit(0);
    process.stderr.write(`gantry: ${oneLine(err.message.replace(/^error: /, ""))} (see gantry --help)\n`);
    process.exit(EXIT_USAGE);
  }
  if (err instanceof GantryError) {
    // An interrupted command says so, rather than "the operation was aborted".
    const reason = interruption.signal.aborted && err.code === "ABORTED" ? interruption.signal.reason : undefined;
    const message = reason instanceof Error ? `${reason.message}; the destination was left as it was` : err.message;
    process.stderr.write(`gantry: ${oneLine(message)}\n`);
    if (debug) process.stderr.write(`${err.stack ?? ""}\n${err.cause ? String((err.cause as Error).stack ?? err.cause) : ""}\n`);
    process.exit(EXIT_FAILED);
  }
  const e = err as Error;
  process.stderr.write(`gantry: unexpected failure: ${oneLine(e?.message ?? String(err))} (set GANTRY_DEBUG=1 for details)\n`);
  if (debug) process.stderr.write(`${e?.stack ?? ""}\n`);
  process.exit(EXIT_FAILED);
}

/**
 * Runs the command line `argv` (as process.argv). A failure is reported as one `gantry:` line on
 * stderr and ends the process: status 2 for a usage error, 1 for any other.
 */
export async function main(argv: string[]): Promise<void> {
  const program = new Command("gantry");
  program
    .description("build, move and take apart container images with no daemon, no VM and no root")
    .version(packageVersion(), "--version", "print the version")
    .helpOption("-h, --help", "show help")
    .option("-q, --quiet", "print no progress")
    .addOption(new Option("--progress <mode>", "auto: live bars on a terminal, plain lines elsewhere; tty or plain to choose").choices(["auto", "tty", "plain"]).default("auto"))
    .option("--json", "print a machine-readable result on stdout")
    .addOption(new Option("--tls-verify <bool>", "verify registry TLS certificates (use --tls-verify=false for self-signed)").argParser(parseBoolFlag))
    .option("--creds <user:pass>", "registry credentials")
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      // Commander's own error text is reformatted by reportAndExit into one gantry: line.
      outputError: () => {},
    });
  registerCommands(program);
  // Every command, nested ones (cache prune) included, reports its usage errors as one line.
  const quiet = (cmd: Command): void => {
    for (const c of cmd.commands) {
      c.exitOverride().configureOutput({ outputError: () => {} });
      quiet(c);
    }
  };
  quiet(program);
  try {
    await program.parseAsync(argv);
  } catch (err) {
    reportAndExit(err);
  }
}

/** How long an interrupted command may take to clean up before the process exits anyway. */
const CLEANUP_GRACE_MS = 15_000;

// The first Ctrl-C aborts the command, which cleans up its temporary files and fails with
// one gantry: line; a second one, or a command that does not stop in time, exits at once.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (interruption.signal.aborted) process.exit(EXIT_FAILED);
    interruption.abort(new AbortedError(signal, `interrupted by ${signal}`));
    setTimeout(() => process.exit(EXIT_FAILED), CLEANUP_GRACE_MS).unref();
  });
}
process.on("SIGPIPE", () => process.exit(EXIT_FAILED));
// Writing to a closed stdout (e.g. `gantry build -o - | head`) is not worth a stack trace.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(EXIT_FAILED);
});

/** Runs the command line, then exits: no top-level await, so the CLI bundles as a script (launch.ts). */
async function run(): Promise<void> {
  await main(process.argv);
  stopProgress();
  // Done: what is still open (idle keep-alive sockets, idle gzip workers) must not hold the
  // user's prompt back. Output already written is flushed first.
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(process.exitCode ?? 0);
}

function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.writableLength === 0 || stream.destroyed) resolve();
    else stream.once("drain", resolve).once("close", resolve);
  });
}

void run();
