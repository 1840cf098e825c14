import type { Command } from "commander";
import type { ManifestFormat } from "../../transports/docker/manifest.js";
import { copyImage, type CopyImageOptions } from "../../ops/copy.js";
import { globalOptions, printJson, progressPrinter, runOptions } from "../context.js";
import { formatOption } from "./push.js";

export function registerCopy(program: Command): void {
  program
    .command("copy")
    .description("copy an image between any two references: archives, layouts, registries")
    .argument("<src>", "any image reference (docker-archive:, oci:, oci-archive:, docker://, a path)")
    .argument("<dest>", "any writable reference (a path, oci:DIR, oci-archive:PATH, docker://HOST/REPO:TAG, -)")
    .addOption(formatOption())
    .option("--pick <name:tag>", "which image of a multi-image source")
    .option("--platform <os/arch[/variant]>", "which image of a multi-platform source (default: this machine's)")
    .action(async (src: string, dest: string, o: { format?: ManifestFormat; pick?: string; platform?: string }, cmd: Command) => {
      const g = globalOptions(cmd);
      const opts: CopyImageOptions = { src, dest, onProgress: progressPrinter(g), ...runOptions(g) };
      if (o.format !== undefined) opts.format = o.format;
      if (o.pick !== undefined) opts.pick = o.pick;
      if (o.platform !== undefined) opts.platform = o.platform;
      const r = await copyImage(opts);
      if (g.json && r.dest !== "-") printJson(r);
      else if (!g.quiet) process.stderr.write(`copied ${r.src} -> ${r.dest} (${r.manifestDigest})\n`);
    });
}
