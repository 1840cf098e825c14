// Bundles the command line into one ESM file beside dist/src/cli/main.js, which is what the
// `gantry` bin runs: Node 20 resolving and compiling ~150 modules one by one costs a third of
// a second at every start, which is most of a fast rebuild. The library (dist/src/index.js)
// stays unbundled. The bundle sits in dist/src/cli/ so that the URLs the code builds from
// import.meta.url (package.json, the gzip worker, the library entry for TS specs) resolve as
// they do from the unbundled files. jiti (loaded only for TS specs) and zstd-napi (a native
// addon) stay outside.
import { build } from "esbuild";

await build({
  entryPoints: ["src/cli/main.ts"],
  outfile: "dist/src/cli/gantry.mjs",
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  external: ["jiti", "zstd-napi"],
  // Bundled CommonJS dependencies call require() for Node's built-ins.
  banner: { js: "import { createRequire as __gantryCreateRequire } from 'node:module'; const require = __gantryCreateRequire(import.meta.url);" },
  logLevel: "warning",
});
