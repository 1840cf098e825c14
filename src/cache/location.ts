import { homedir } from "node:os";
import { join } from "node:path";

/** `$GANTRY_CACHE`, else `$XDG_CACHE_HOME/gantry`, else `~/.cache/gantry` (SPEC "Cache"). */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env["GANTRY_CACHE"]) return env["GANTRY_CACHE"];
  if (env["XDG_CACHE_HOME"]) return join(env["XDG_CACHE_HOME"], "gantry");
  return join(env["HOME"] ?? homedir(), ".cache", "gantry");
}
