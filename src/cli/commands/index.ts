import type { Command } from "commander";
import { registerBuild } from "./build.js";
import { registerExport } from "./export.js";
import { registerInspect } from "./inspect.js";

/** Every command, one module each; main.ts knows only this list. */
export function registerCommands(program: Command): void {
  registerBuild(program);
  registerInspect(program);
  registerExport(program);
}
