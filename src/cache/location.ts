import { homedir } from "node:os";
import { join } from "node:path";

/** `$GANTRY_CACHE`, else `$XDG_CACHE_HOME/gantry`, else `~/.cache/gantry` (SPEC "Cache"). */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env["GANTRY_CACHE"]) return env["GANTRY_CACHE"];
  return join(userCacheHome(env), "gantry");
}

/** The user's cache directory: `$XDG_CACHE_HOME`, else `~/.cache`. */
export function userCacheHome(env: NodeJS.ProcessEnv = process.env): string {
  return env["XDG_CACHE_HOME"] || join(env["HOME"] ?? homedir(), ".cache");
}
