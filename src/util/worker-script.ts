/**
 * Defined (as true) only in the gantry command's bundles (the CLI and its launchers), by
 * tools/bundle-cli.mjs, which also bundles each worker's module into one CommonJS script
 * beside it.
 */
declare const GANTRY_BUNDLED_WORKERS: boolean | undefined;

/**
 * The script a worker thread runs, given its module (`NAME.js`). In the gantry command it is
 * the worker's bundle, `NAME.cjs` beside the module: node starts a worker on an ES module by
 * loading its ES module loader and then each module file, 20-25 ms of every worker's start
 * here, where a script needs neither. The library, which is not bundled, runs the module.
 */
export function workerScript(module: URL): URL {
  const bundled = typeof GANTRY_BUNDLED_WORKERS !== "undefined" && GANTRY_BUNDLED_WORKERS;
  return bundled ? new URL(module.href.replace(/\.js$/, ".cjs")) : module;
}
