import type { Command } from "commander";
import { pullImage, type PullImageOptions } from "../../ops/copy.js";
import { globalOptions, printJson, progressPrinter, runOptions, platformOption } from "../context.js";

/** `gantry pull REF -o DEST`: pullImage, then one line on stderr (or the result as JSON). */
export function registerPull(program: Command): void {
  program
    .command("pull")
    .description("fetch an image from a registry into an archive or layout (through the cache)")
    .argument("<ref>", "docker://HOST/REPOSITORY[:TAG][@sha256:DIGEST] (docker:// may be left out)")
    .requiredOption("-o, --output <dest>", "where to write: a path (docker-archive), oci:DIR, oci-archive:PATH, dir:DIR, docker-daemon:NAME:TAG, or - for stdout")
    .addOption(platformOption("which image of a multi-platform index (default: this machine's)"))
    .option("--all", "pull every platform of an index, and the index itself (for oci:, oci-archive:, dir:)")
    .option("--no-cache", "do not read or write the cache")
    .action(async (ref: string, o: { output: string; platform?: string; all?: boolean; cache: boolean }, cmd: Command) => {
      const g = globalOptions(cmd);
      const opts: PullImageOptions = { ref, dest: o.output, noCache: !o.cache, onProgress: progressPrinter(g), ...runOptions(g) };
      if (o.platform !== undefined) opts.platform = o.platform;
      if (o.all) opts.all = true;
      const r = await pullImage(opts);
      if (g.json && r.dest !== "-") printJson(r);
      else if (!g.quiet) process.stderr.write(`pulled ${r.ref} (${r.manifestDigest}) -> ${r.dest}\n`);
    });
}
