import type { Command } from "commander";
import { mergeImages, type MergeOptions } from "../../ops/merge.js";
import { globalOptions, printJson, progressPrinter, runOptions } from "../context.js";

/** `gantry merge SRC... -o DEST`: mergeImages, then one line on stderr (or the result as JSON). */
export function registerMerge(program: Command): void {
  program
    .command("merge")
    .description("put several images in one archive, each blob once, every name kept")
    .argument("<src...>", "image references, one image each (docker-archive:PATH:NAME:TAG picks one of several)")
    .requiredOption("-o, --output <dest>", "where to write: a docker-archive path, or any writable reference")
    .action(async (sources: string[], o: { output: string }, cmd: Command) => {
      const g = globalOptions(cmd);
      const opts: MergeOptions = { sources, output: o.output, onProgress: progressPrinter(g), ...runOptions(g) };
      const r = await mergeImages(opts);
      if (g.json && r.output !== "-") printJson(r);
      else if (!g.quiet) {
        const names = r.images.flatMap((i) => i.repoTags);
        process.stderr.write(`merged ${r.images.length} image(s) (${names.join(", ") || "untagged"}) -> ${r.output}\n`);
      }
    });
}
