import type { Command } from "commander";
import { buildImage, type BuildOptions } from "../../build/build.js";
import { collect, globalOptions, printJson, progressPrinter, runOptions } from "../context.js";

export function registerBuild(program: Command): void {
  program
    .command("build")
    .description("build an image from a spec (JSON, or a TS/JS module) into a docker-archive that is also an OCI layout")
    .argument("<spec>", "the build spec file")
    .option("-o, --output <dest>", "where to write: a path, oci:DIR, oci-archive:PATH, or - for stdout (default ./NAME.tar)")
    .option("--tag <name:tag>", "another name for the image (repeatable)", collect, [] as string[])
    .option("--no-cache", "do not read or write the cache")
    .action(async (spec: string, o: { output?: string; tag: string[]; cache: boolean }, cmd: Command) => {
      const g = globalOptions(cmd);
      const opts: BuildOptions = { spec, tags: o.tag, noCache: !o.cache, onProgress: progressPrinter(g), ...runOptions(g) };
      if (o.output !== undefined) opts.output = o.output;
      const r = await buildImage(opts);
      const summary = {
        output: r.output,
        repoTags: r.repoTags,
        manifestDigest: r.manifestDigest,
        configDigest: r.configDigest,
        layers: r.layers,
      };
      if (g.json && r.output !== "-") printJson(summary);
      else if (!g.quiet) process.stderr.write(`built ${r.repoTags[0]} (${r.manifestDigest}) -> ${r.output}\n`);
    });
}
