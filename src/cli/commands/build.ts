import type { Command } from "commander";
import { buildImage, type BuildOptions, type BuildResult, type BuiltLayer } from "../../builder/build.js";
import { InvalidArgumentError } from "commander";
import { parseRepoTag } from "../../transports/image-name.js";
import { globalOptions, platformOption, printJson, progressPrinter, runOptions, stopProgress } from "../context.js";
import { formatSize } from "../../util/format.js";

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** A --tag value, checked as an image name before any work (a bad one is a usage error). */
function collectRepoTag(value: string, previous: string[]): string[] {
  try {
    parseRepoTag(value, "--tag");
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return [...previous, value];
}

/** `gantry build SPEC`: buildImage, then one summary line on stderr (or the result as JSON with --json). */
export function registerBuild(program: Command): void {
  program
    .command("build")
    .description("build an image from a spec (JSON, or a TS/JS module) into a docker-archive that is also an OCI layout")
    .argument("<spec>", "the build spec file")
    .option("-o, --output <dest>", "where to write: a path, oci:DIR, oci-archive:PATH, dir:DIR, docker://HOST/REPO:TAG, docker-daemon:NAME:TAG, or - for stdout (default ./NAME.tar)")
    .option("--tag <name:tag>", "another name for the image (repeatable)", collectRepoTag, [] as string[])
    .option("--load", "load the image into the Docker engine ($DOCKER_HOST) under its name and every --tag, instead of -o")
    .addOption(platformOption("build this one platform (one of the spec's platforms, or in place of its architecture)"))
    .option("--no-cache", "do not read or write the cache (the registry cache neither)")
    .option("--cache-from <docker://HOST/REPO>", "take layers from this registry cache by their content key (repeatable; default $GANTRY_CACHE_FROM); reads only", collect, [] as string[])
    .option("--cache-to <docker://HOST/REPO>", "record this build's layers in this registry cache, and read from it (repeatable; default $GANTRY_CACHE_TO)", collect, [] as string[])
    .action(async (spec: string, o: { output?: string; tag: string[]; load?: boolean; platform?: string; cache: boolean; cacheFrom: string[]; cacheTo: string[] }, cmd: Command) => {
      const g = globalOptions(cmd);
      const opts: BuildOptions = { spec, tags: o.tag, noCache: !o.cache, onProgress: progressPrinter(g), ...runOptions(g) };
      if (o.load) opts.load = true;
      if (o.platform !== undefined) opts.platform = o.platform;
      if (o.output !== undefined) opts.output = o.output;
      if (o.cacheFrom.length > 0) opts.cacheFrom = o.cacheFrom;
      if (o.cacheTo.length > 0) opts.cacheTo = o.cacheTo;
      const started = Date.now();
      const r = await buildImage(opts);
      const summary = {
        output: r.output,
        repoTags: r.repoTags,
        manifestDigest: r.manifestDigest,
        configDigest: r.configDigest,
        layers: r.layers,
        ...(r.platforms ? { platforms: r.platforms.map((p) => ({ platform: p.platform, manifestDigest: p.manifestDigest, configDigest: p.configDigest, layers: p.layers })) } : {}),
      };
      if (g.json && r.output !== "-") printJson(summary);
      else if (!g.quiet) {
        stopProgress();
        process.stderr.write(`${summaryLine(r, (Date.now() - started) / 1000)}\n`);
      }
    });
}

/**
 * The line a build ends with: `built NAME:TAG DIGEST SIZE, N layers (new/cached/base) in
 * T s -> OUTPUT`; a multi-platform build counts every platform's layers under the index.
 */
function summaryLine(r: BuildResult, seconds: number): string {
  const layers: BuiltLayer[] = r.platforms ? r.platforms.flatMap((p) => p.layers) : r.layers;
  const base = layers.filter((l) => l.base).length;
  const cached = layers.filter((l) => !l.base && l.cached).length;
  const fresh = layers.length - base - cached;
  const size = formatSize(layers.reduce((sum, l) => sum + l.size, 0));
  const platforms = r.platforms ? ` (index of ${r.platforms.length} platforms)` : "";
  return `built ${r.repoTags[0]} ${r.manifestDigest}${platforms} ${size}, ${layers.length} ${layers.length === 1 ? "layer" : "layers"} (${fresh} new, ${cached} cached, ${base} base) in ${seconds.toFixed(1)} s -> ${r.output}`;
}
