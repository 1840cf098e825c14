import { Option, type Command } from "commander";
import { pushImage, type ManifestFormat, type PushImageOptions } from "../../ops/copy.js";
import { globalOptions, platformOption, printJson, progressPrinter, runOptions } from "../context.js";

/** `--format`, shared by push and copy; commander refuses other values as a usage error. */
export function formatOption(): Option {
  return new Option("--format <format>", "write the manifest in this format, converting it if it is not (default: as the source holds it)")
    .choices(["oci", "v2s2"]);
}

/** `gantry push SRC REF`: pushImage, then one line on stderr counting the blobs uploaded, skipped and mounted (or JSON). */
export function registerPush(program: Command): void {
  program
    .command("push")
    .description("send an image to a registry; blobs it already holds are skipped or mounted")
    .argument("<src>", "any image reference (docker-archive:, oci:, oci-archive:, dir:, docker://, docker-daemon:, a path)")
    .argument("<ref>", "docker://HOST/REPOSITORY[:TAG] (docker:// may be left out)")
    .addOption(formatOption())
    .option("--pick <name:tag>", "which image of a multi-image source")
    .option("--all", "push every platform of an index, and the index itself")
    .addOption(platformOption())
    .action(async (src: string, ref: string, o: { format?: ManifestFormat; pick?: string; all?: boolean; platform?: string }, cmd: Command) => {
      const g = globalOptions(cmd);
      const opts: PushImageOptions = { src, ref, onProgress: progressPrinter(g), ...runOptions(g) };
      if (o.format !== undefined) opts.format = o.format;
      if (o.pick !== undefined) opts.pick = o.pick;
      if (o.all) opts.all = true;
      if (o.platform !== undefined) opts.platform = o.platform;
      const r = await pushImage(opts);
      if (g.json) printJson(r);
      else if (!g.quiet) {
        process.stderr.write(`pushed ${r.ref} (${r.digest}): ${r.uploaded} blob(s) uploaded, ${r.skipped} already there, ${r.mounted} mounted\n`);
      }
    });
}
