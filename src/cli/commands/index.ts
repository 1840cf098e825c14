import type { Command } from "commander";
import { registerBuild } from "./build.js";
import { registerExport } from "./export.js";
import { registerInspect } from "./inspect.js";
import { registerMerge } from "./merge.js";
import { registerCopy } from "./copy.js";
import { registerPull } from "./pull.js";
import { registerPush } from "./push.js";
import { registerDiff } from "./diff.js";
import { registerCache } from "./cache.js";

/** Every command, one module each; main.ts knows only this list. */
export function registerCommands(program: Command): void {
  registerBuild(program);
  registerInspect(program);
  registerExport(program);
  registerMerge(program);
  registerPull(program);
  registerPush(program);
  registerCopy(program);
  registerDiff(program);
  registerCache(program);
}
