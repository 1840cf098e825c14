import type { Command } from "commander";
import { copyImage, type CopyImageOptions, type ManifestFormat } from "../../ops/copy.js";
import { globalOptions, printJson, progressPrinter, runOptions, platformOption } from "../context.js";
import { formatOption } from "./push.js";

/** `gantry copy SRC DEST`: copyImage, then one line on stderr (or the result as JSON with --json). */
export function registerCopy(program: Command): void {
  program
    .command("copy")
    .description("copy an image between any two references, keeping its manifest bytes and digest where the destination can hold them")
    .argument("<src>", "any image reference (docker-archive:, oci:, oci-archive:, dir:, docker://, docker-daemon:, a path)")
    .argument("<dest>", "any writable reference (a path, oci:DIR, oci-archive:PATH, dir:DIR, docker://HOST/REPO:TAG, docker-daemon:NAME:TAG, -)")
    .addOption(formatOption())
    .option("--all", "copy every platform of an index, and the index itself")
    .option("--pick <name:tag>", "which image of a multi-image source")
    .addOption(platformOption("which image of a multi-platform source (default: this machine's)"))
    .action(async (src: string, dest: string, o: { format?: ManifestFormat; all?: boolean; pick?: string; platform?: string }, cmd: Command) => {
      const g = globalOptions(cmd);
      const opts: CopyImageOptions = { src, dest, onProgress: progressPrinter(g), ...runOptions(g) };
      if (o.format !== undefined) opts.format = o.format;
      if (o.all) opts.all = true;
      if (o.pick !== undefined) opts.pick = o.pick;
      if (o.platform !== undefined) opts.platform = o.platform;
      const r = await copyImage(opts);
      if (g.json && r.dest !== "-") printJson(r);
      else if (!g.quiet) process.stderr.write(`copied ${r.src} -> ${r.dest} (${r.manifestDigest})\n`);
    });
}
