// Bundles the command line for the `gantry` bin, beside dist/src/cli/main.js: Node 20
// resolving and compiling ~150 modules one by one costs a third of a second at every
// start, which is most of a fast rebuild. Two files:
// - gantry-cli.cjs: the CLI (src/cli/main.ts) as one CommonJS script, so that launch.ts
//   can compile it with a V8 code cache (ES modules take none on Node 20);
// - gantry.mjs: the bin itself (src/cli/launch.ts), which runs gantry-cli.cjs.
// The library (dist/src/index.js) stays unbundled. Both sit in dist/src/cli/ so that the
// URLs the code builds from import.meta.url (package.json, the workers, the library entry
// for TS specs) resolve as they do from the unbundled files. jiti (loaded only for TS
// specs) and zstd-napi (a native addon) stay outside.
import { build } from "esbuild";
import { readFileSync } from "node:fs";

const common = { bundle: true, platform: "node", target: "node20", logLevel: "warning" };
const CLI = "dist/src/cli/gantry-cli.cjs";

await build({
  ...common,
  entryPoints: ["src/cli/main.ts"],
  outfile: CLI,
  format: "cjs",
  external: ["jiti", "zstd-napi"],
  // A script has no import.meta: the bundle's own file URL stands in for it.
  define: { "import.meta.url": "__gantryModuleUrl" },
  banner: { js: "var __gantryModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
});

// A script compiled by launch.ts has no loader for import(): one would fail when reached.
const dynamicImport = /[^\w.$]import\(/.exec(readFileSync(CLI, "utf8"));
if (dynamicImport) {
  throw new Error(`${CLI} holds an import() expression, which the launcher cannot run; use require (see spec-load.ts)`);
}

await build({
  ...common,
  entryPoints: ["src/cli/launch.ts"],
  outfile: "dist/src/cli/gantry.mjs",
  format: "esm",
});
