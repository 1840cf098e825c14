#!/usr/bin/env node
import { closeSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeSync } from "node:fs";
import { createRequire, Module } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";
import { availableParallelism } from "node:os";
import vm from "node:vm";
import { userCacheHome } from "../cache/location.js";
import { prestartSnapshotThread } from "../cache/snapshot-prestart.js";

/**
 * What the `gantry` command runs: the CLI (main.ts, bundled as one script, gantry-cli.cjs),
 * compiled with a V8 code cache. Compiling, then lazily compiling, the 850 KB bundle took
 * 45–60 ms of every command, about a sixth of a no-op rebuild; V8 reads its code cache back
 * instead.
 *
 * Where: `$XDG_CACHE_HOME/gantry-code` (else `~/.cache/gantry-code`), one file per node flags
 * (V8 refuses a cache made under other flags, and bin/gantry passes one that `node gantry.mjs`
 * does not), outside the layer cache (`$GANTRY_CACHE`), which `--no-cache` and a refused
 * command leave untouched. It is written after a command that succeeded, with what that
 * command compiled.
 *
 * The code cache is V8's own bytecode, which V8 runs as it is: whoever can write the file can
 * run code as the user. So it is read only from a directory this user owns and no one else
 * may write to, and written atomically. Anything wrong with it (missing, from another bundle
 * or node, unreadable, the directory not safe) means compiling as usual.
 */

const BUNDLE = fileURLToPath(new URL("./gantry-cli.cjs", import.meta.url));

/** Only this user may write where the cache is read from. */
function safeDirectory(dir: string): boolean {
  try {
    const st = lstatSync(dir);
    const uid = process.getuid?.();
    return st.isDirectory() && (uid === undefined || st.uid === uid) && (st.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

function readCache(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch {
    return undefined;
  }
}

/**
 * Written beside, then renamed: a reader never sees half a cache. The caches of other
 * bundles and nodes (an upgrade's leftovers) go: those of this bundle and node under other
 * flags stay, about 500 KB each.
 */
function writeCache(path: string, bundleName: string, data: Buffer): void {
  const dir = dirname(path);
  const temp = `${path}.${process.pid}.tmp`;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!safeDirectory(dir)) return;
    const fd = openSync(temp, "wx", 0o600);
    try {
      writeSync(fd, data);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
    for (const name of readdirSync(dir)) {
      const thisBundle = name === `${bundleName}.bin` || name.startsWith(`${bundleName}-`);
      if (name.endsWith(".bin") && !thisBundle) rmSync(join(dir, name), { force: true });
    }
  } catch {
    rmSync(temp, { force: true });
    // Not cached this time: the next command compiles again and tries again.
  }
}

/**
 * bin/gantry starts node without NODE_EXTRA_CA_CERTS, handing the file on as
 * GANTRY_EXTRA_CA_CERTS (see there); the programs gantry runs (credential helpers, scripts)
 * get it back as they would have had it.
 */
function restoreExtraCaCerts(): void {
  const deferred = process.env["GANTRY_EXTRA_CA_CERTS"];
  if (deferred !== undefined && process.env["NODE_EXTRA_CA_CERTS"] === undefined) process.env["NODE_EXTRA_CA_CERTS"] = deferred;
}

/**
 * bin/gantry caps glibc's malloc arenas for gantry's own process (see there) when the user
 * had not; glibc read the cap as node started, so it can go now, and the programs gantry
 * runs start with the environment the user gave.
 */
function restoreMallocArenas(): void {
  if (process.env["GANTRY_SET_MALLOC_ARENA_MAX"] !== "1") return;
  delete process.env["MALLOC_ARENA_MAX"];
  delete process.env["GANTRY_SET_MALLOC_ARENA_MAX"];
}

/**
 * V8 grows its old generation to up to four times what it last found live before it collects
 * again; a big build's peak is mostly that headroom. Growing by a fifth keeps the peak near
 * what is live, for a few more collections (bench/README.md). V8 reads the flag at each
 * collection, so it can be set as the command starts, and a flag set then leaves the code
 * caches valid, where one given to node as it starts does not. Set any later (after a second,
 * say), it came too late: the limits of the collections before held.
 */
const HEAP_GROWING_PERCENT = 20;

/** The node flags this process started with, as part of a file name ("" for none). */
function flagsName(): string {
  return process.execArgv.map((flag) => `-${flag.replace(/^-+/, "").replace(/[^\w.=-]/g, "_")}`).join("");
}

function launch(): void {
  restoreExtraCaCerts();
  restoreMallocArenas();
  v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  // A rebuild's lstat walk of a big tree wants a second thread as it begins (see there).
  prestartSnapshotThread(process.argv.slice(2), availableParallelism());
  // The bundle is ASCII (tools/bundle-cli.mjs): read as latin1, it is the same text, without
  // utf8's checks, in half the time (4-5 ms here for 900 KB).
  const source = readFileSync(BUNDLE, "latin1");
  const bundle = lstatSync(BUNDLE);
  const dir = join(userCacheHome(), "gantry-code");
  // A cache per bundle, node and flags: V8 would refuse another's anyway, at the cost of reading it.
  const bundleName = `${process.version}-${process.arch}-${bundle.size}-${Math.floor(bundle.mtimeMs)}`;
  const path = join(dir, `${bundleName}${flagsName()}.bin`);
  const cachedData = safeDirectory(dir) ? readCache(path) : undefined;
  const script = new vm.Script(Module.wrap(source.replace(/^#!.*/, "")), {
    filename: BUNDLE,
    ...(cachedData === undefined ? {} : { cachedData }),
  });
  if (cachedData === undefined || script.cachedDataRejected === true) {
    process.once("exit", (code) => {
      if (code === 0) writeCache(path, bundleName, script.createCachedData());
    });
  }
  const module = { exports: {} };
  const wrapper = script.runInThisContext() as (...args: unknown[]) => void;
  wrapper.call(module.exports, module.exports, createRequire(BUNDLE), module, BUNDLE, dirname(BUNDLE));
}

launch();
