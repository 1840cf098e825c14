// Bundles the command line for the `gantry` bin, beside dist/src/cli/main.js: Node 20
// resolving and compiling ~150 modules one by one costs a third of a second at every
// start, which is most of a fast rebuild. It writes:
// - gantry-cli.cjs: the CLI (src/cli/main.ts) as one CommonJS script, so that launch.ts
//   can compile it with a V8 code cache (ES modules take none on Node 20);
// - gantry.cjs, run by bin/gantry, and gantry.mjs, for `node dist/src/cli/gantry.mjs`: the
//   launcher (src/cli/launch.ts), which runs gantry-cli.cjs;
// - NAME.cjs beside each worker thread's module, which the CLI's workers run.
// The library (dist/src/index.js) stays unbundled. The CLI's files sit in dist/src/cli/ so
// that the URLs the code builds from import.meta.url (package.json, the workers, the library
// entry for TS specs) resolve as they do from the unbundled files. jiti (loaded only for TS
// specs) and zstd-napi (a native addon) stay outside.
import { build } from "esbuild";
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";

const common = { bundle: true, platform: "node", target: "node20", logLevel: "warning" };

// Node modules the CLI needs only on some paths (a push, a runAsRoot, worker threads, a
// progress bar), each loaded the first time one of its exports is read rather than when the
// bundle starts. A bundle runs every module's top level at once, so every command loaded all
// of them (99 of node's modules for `gantry --version`, 63 now), each compiled afresh under
// bin/gantry's V8 flag, which costs node its compiled copies of its own modules.
const LAZY_BUILTINS = ["child_process", "crypto", "http", "https", "readline", "tls", "worker_threads", "zlib"];
const lazyBuiltins = {
  name: "lazy-builtins",
  setup(build) {
    const filter = new RegExp(`^(node:)?(${LAZY_BUILTINS.join("|")})$`);
    build.onResolve({ filter }, (args) =>
      args.namespace === "lazy-builtin" ? { path: args.path, external: true } : { path: args.path.replace(/^node:/, ""), namespace: "lazy-builtin" });
    build.onLoad({ filter: /.*/, namespace: "lazy-builtin" }, (args) => ({ contents: lazyModule(args.path), loader: "js" }));
  },
};

/** A CommonJS module whose exports read through to `node:NAME`, required at the first read. */
function lazyModule(name) {
  const names = Object.keys(createRequire(import.meta.url)(`node:${name}`)).filter((n) => n !== "default");
  const getters = names.map((n) => `  ${JSON.stringify(n)}: { enumerable: true, get: () => load()[${JSON.stringify(n)}] },`);
  return [
    `let loaded;`,
    `const load = () => loaded ??= require("node:${name}");`,
    `module.exports = Object.defineProperties({}, {`,
    `  __esModule: { value: true },`,
    `  default: { enumerable: true, get: load },`,
    ...getters,
    `});`,
  ].join("\n");
}

const CLI = "dist/src/cli/gantry-cli.cjs";
// The CLI's worker threads run the scripts below, not the library's modules (src/util/worker-script.ts).
const bundledWorkers = { GANTRY_BUNDLED_WORKERS: "true" };
// A CommonJS script has no import.meta: its own file URL stands in for it.
const asScript = {
  define: { "import.meta.url": "__gantryModuleUrl" },
  banner: { js: "var __gantryModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
};

await build({
  ...common,
  entryPoints: ["src/cli/main.ts"],
  outfile: CLI,
  format: "cjs",
  external: ["jiti", "zstd-napi"],
  plugins: [lazyBuiltins],
  ...asScript,
  define: { ...asScript.define, ...bundledWorkers },
});

// Each worker thread's module as one script beside it (NAME.cjs), which the CLI's workers
// run (src/util/worker-script.ts).
await build({
  ...common,
  entryPoints: ["src/cache/hash-worker.ts", "src/cache/snapshot-worker.ts", "src/compression/block-worker.ts"],
  outdir: "dist/src",
  outbase: "src",
  outExtension: { ".js": ".cjs" },
  format: "cjs",
  external: ["zstd-napi"],
  plugins: [lazyBuiltins],
  ...asScript,
});

// A script compiled by launch.ts has no loader for import(): one would fail when reached.
const bundled = readFileSync(CLI, "utf8");
const dynamicImport = /[^\w.$]import\(/.exec(bundled);
if (dynamicImport) {
  throw new Error(`${CLI} holds an import() expression, which the launcher cannot run; use require (see spec-load.ts)`);
}

// launch.ts reads the bundle as latin1, which is its text only while every byte is ASCII. esbuild
// writes code in ASCII (its default charset) but keeps the comments it keeps as they were
// written; in a comment an escape is as good as the character.
const ascii = bundled.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
if (ascii !== bundled) writeFileSync(CLI, ascii);

// The launcher twice: gantry.mjs for `node dist/src/cli/gantry.mjs`, and gantry.cjs for
// bin/gantry. Node runs an ES module through its ES module loader, whose own modules it must
// load first (7-10 ms of every start here); a CommonJS script needs none of that.
// Both may start the CLI's snapshot worker ahead of it (src/cache/snapshot-prestart.ts), so they
// name the workers' scripts as the CLI does, and load worker_threads only then. The ES module
// has no require of its own for the lazy modules: one is made for it.
await build({
  ...common,
  entryPoints: ["src/cli/launch.ts"],
  outfile: "dist/src/cli/gantry.mjs",
  format: "esm",
  plugins: [lazyBuiltins],
  banner: { js: "import { createRequire as __gantryCreateRequire } from 'node:module'; const require = __gantryCreateRequire(import.meta.url);" },
  define: bundledWorkers,
});
await build({
  ...common,
  entryPoints: ["src/cli/launch.ts"],
  outfile: "dist/src/cli/gantry.cjs",
  format: "cjs",
  plugins: [lazyBuiltins],
  ...asScript,
  define: { ...asScript.define, ...bundledWorkers },
});
