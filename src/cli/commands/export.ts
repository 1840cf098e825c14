import type { Command } from "commander";
import { exportImage, type ExportOptions } from "../../ops/export.js";
import { globalOptions, platformOption, printJson, progressPrinter, runOptions } from "../context.js";

/** `gantry export SRC -o DEST`: exportImage, then one line on stderr naming any device nodes left out. */
export function registerExport(program: Command): void {
  program
    .command("export")
    .description("write an image's merged root file system (whiteouts applied) to a directory or a tar")
    .argument("<src>", "any image reference (docker-archive:, oci:, oci-archive:, dir:, docker://, docker-daemon:, a path)")
    .requiredOption("-o, --output <dest>", "a directory, FILE.tar for a deterministic tar, or - for a tar on stdout")
    .addOption(platformOption())
    .action(async (src: string, o: { output: string; platform?: string }, cmd: Command) => {
      const g = globalOptions(cmd);
      const opts: ExportOptions = { ref: src, output: o.output, onProgress: progressPrinter(g), ...runOptions(g) };
      if (o.platform !== undefined) opts.platform = o.platform;
      const r = await exportImage(opts);
      if (g.json && r.output !== "-") printJson(r);
      else if (!g.quiet) {
        process.stderr.write(`exported ${r.entries} paths of ${r.layers} layer(s) -> ${r.output}\n`);
        if (r.skippedDevices.length > 0) {
          process.stderr.write(`left out ${r.skippedDevices.length} device node(s), which only root can make: ${r.skippedDevices.join(", ")}\n`);
        }
      }
    });
}
