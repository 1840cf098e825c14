import type { Command } from "commander";
import { diffImages } from "../../ops/diff.js";
import { globalOptions, platformOption, printJson, printLine, progressPrinter, runOptions } from "../context.js";

/** `gantry diff A B`: diffImages, printed as `A|D|M /path` lines in byte order on stdout (or as JSON). */
export function registerDiff(program: Command): void {
  program
    .command("diff")
    .description("files added (A), removed (D) and changed (M) between two images' root file systems")
    .argument("<a>", "the image compared from (any reference)")
    .argument("<b>", "the image compared to")
    .addOption(platformOption("which image of multi-platform sources (default: this machine's)"))
    .action(async (a: string, b: string, o: { platform?: string }, cmd: Command) => {
      const g = globalOptions(cmd);
      const r = await diffImages({ a, b, onProgress: progressPrinter(g), ...runOptions(g), ...(o.platform !== undefined ? { platform: o.platform } : {}) });
      if (g.json) { printJson(r); return; }
      // One merged listing in path order, like `git diff --name-status`.
      const lines: [string, string][] = [
        ...r.added.map((p): [string, string] => [p, `A /${p}`]),
        ...r.removed.map((p): [string, string] => [p, `D /${p}`]),
        ...r.changed.map((c): [string, string] => [c.path, `M /${c.path} (${c.attributes.join(", ")})`]),
      ];
      lines.sort((x, y) => Buffer.compare(Buffer.from(x[0]), Buffer.from(y[0])));
      for (const [, line] of lines) printLine(line);
    });
}
