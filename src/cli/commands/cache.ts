import { InvalidArgumentError, type Command } from "commander";
import { defaultCacheDir } from "../../cache/location.js";
import { pruneCache, type PruneOptions } from "../../cache/prune.js";
import { formatSize } from "../../util/format.js";
import { globalOptions, printJson } from "../context.js";

const DEFAULT_MAX_AGE = "30d";
const DURATION_UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const SIZE_UNITS: Record<string, number> = { "": 1, b: 1, k: 1e3, kb: 1e3, kib: 1024, m: 1e6, mb: 1e6, mib: 1024 ** 2, g: 1e9, gb: 1e9, gib: 1024 ** 3, t: 1e12, tb: 1e12, tib: 1024 ** 4 };

/** "90m", "12h", "30d", "2w" in milliseconds. */
function parseDuration(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h|d|w)$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`"${value}" is not a duration such as 12h, 30d or 2w`);
  return Number(m[1]) * DURATION_UNITS[m[2]!]!;
}

/** "500MB", "10G", "2GiB", "1000000" in bytes. */
function parseSize(value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value.trim());
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new InvalidArgumentError(`"${value}" is not a size such as 500MB, 10G or 2GiB`);
  return Math.floor(Number(m[1]) * unit);
}

/**
 * `gantry cache prune`: pruneCache, by age (30 days unless only --max-size is given) and by size;
 * a malformed duration or size is a usage error.
 */
export function registerCache(program: Command): void {
  const cache = program.command("cache").description("look after the local cache (default $GANTRY_CACHE, $XDG_CACHE_HOME/gantry, ~/.cache/gantry)");
  cache
    .command("prune")
    .description(`remove what the cache has not used for a while (default: ${DEFAULT_MAX_AGE}), then the least recently used blobs over a size`)
    .option("--max-age <duration>", `remove what has not been used for this long: 12h, 30d, 2w (default ${DEFAULT_MAX_AGE} when --max-size is not given)`)
    .option("--max-size <size>", "then remove the least recently used blobs until they weigh at most this: 500MB, 10G, 2GiB")
    .option("--dry-run", "only say what would be removed")
    .option("--cache-dir <dir>", "the cache to prune (default: the one builds use)")
    .action(async (o: { maxAge?: string; maxSize?: string; dryRun?: boolean; cacheDir?: string }, cmd: Command) => {
      const g = globalOptions(cmd);
      const opts: PruneOptions = { cacheDir: o.cacheDir ?? defaultCacheDir() };
      const maxAge = o.maxAge ?? (o.maxSize === undefined ? DEFAULT_MAX_AGE : undefined);
      if (maxAge !== undefined) opts.maxAgeMs = parseDuration(maxAge);
      if (o.maxSize !== undefined) opts.maxBytes = parseSize(o.maxSize);
      if (o.dryRun) opts.dryRun = true;
      const r = await pruneCache(opts);
      if (g.json) printJson(r);
      else if (!g.quiet) {
        const verb = r.dryRun ? "would remove" : "removed";
        process.stderr.write(`${verb} ${r.removed.blobs} blob(s) (${formatSize(r.removed.bytes)}), ${r.removed.indexEntries} layer index entr${r.removed.indexEntries === 1 ? "y" : "ies"}, ${r.removed.facts} facts file(s), ${r.removed.statTables} stat table(s), ${r.removed.records} snapshot and lookup record(s); kept ${r.kept.blobs} blob(s) (${formatSize(r.kept.bytes)}) in ${r.cacheDir}\n`);
      }
    });
}
