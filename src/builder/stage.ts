import { constants, type Stats } from "node:fs";
import { chmod, chown, copyFile, lchown, link, lstat, mkdir, mkdtemp, readdir, readlink, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ioError, throwIfAborted, SpecError } from "../model/errors.js";
import { deviceNumbers, type SourceSpec } from "../layer/sources.js";
import { baseName, cleanPath, comparePaths, joinPath, parentPath } from "../model/image-path.js";
import { makeSpecialFile } from "../flatten/special-files.js";
import { resolveInRoot } from "../runtime/root-path.js";
import { checkScriptResult, runCaptured } from "../runtime/process.js";

/**
 * A layer staged on disk: the copyToRoot sources laid out in a directory (over a base's
 * root file system for runAsRoot), where scripts can change them before the directory is
 * walked and compared like any source. Its files are read again when the layer is
 * packed, so it lives until `dispose`.
 */
export interface Stage {
  readonly dir: string;
  dispose(): Promise<void>;
}

export async function makeStage(prefix: string): Promise<Stage> {
  let dir: string;
  try {
    dir = await mkdtemp(join(tmpdir(), prefix));
  } catch (err) {
    throw ioError("the temporary directory for staging a layer", err);
  }
  return { dir, dispose: () => rm(dir, { recursive: true, force: true }) };
}

export interface LayDownOptions {
  /** Owner to give every copied path (runAsRoot's root file system); the copier's own when absent. */
  owner?: { uid: number; gid: number };
  signal?: AbortSignal;
}

interface CopyState {
  root: string;
  opts: LayDownOptions;
  /** Source inode (dev:ino) → where its first copy went, so hardlinked sources stay hardlinked. */
  inodes: Map<string, { path: string; ino: number }>;
  /** Directories made only to hold a source's `to`, with no mode of their own. */
  madeForTo: string[];
}

/**
 * Copies the sources into `root` in order, later ones winning, keeping modes, symlinks
 * (never followed), hardlinks between source files and special files. What `root` already
 * holds (a base) is merged into: a directory over a directory keeps both contents, and
 * a symlink of the root leading to a directory is followed, inside the root, as the
 * layer differ does (`lib/x` lands in `usr/lib/x` when `lib -> usr/lib`). Returns the
 * image paths of directories made only to hold a source's `to`.
 */
export async function layDownSources(sources: readonly SourceSpec[], root: string, opts: LayDownOptions = {}): Promise<string[]> {
  const state: CopyState = { root, opts, inodes: new Map(), madeForTo: [] };
  for (const source of sources) {
    throwIfAborted(opts.signal);
    const to = cleanPath(source.to, "the copyToRoot destination");
    const st = await lstat(source.from).catch((err: unknown) => { throw ioError(`the copyToRoot source ${source.from}`, err); });
    if (st.isDirectory()) {
      const dir = await ensureDirFor(state, to);
      await copyChildren(state, source.from, dir);
      if (to !== "") await setAttributes(state, join(root, dir), st);
    } else {
      if (to === "") throw new SpecError(`the copyToRoot source ${source.from} is not a directory and cannot be laid at "/"; give it a "to" path`);
      const dir = await ensureDirFor(state, parentPath(to));
      await copyEntry(state, source.from, st, joinPath(dir, baseName(to)));
    }
  }
  return state.madeForTo;
}

/** The directory `path` resolves to inside the root, made (mode 0755) where missing. */
async function ensureDirFor(state: CopyState, path: string): Promise<string> {
  let dir = "";
  for (const name of path === "" ? [] : path.split("/")) {
    const direct = joinPath(dir, name);
    const resolved = await resolveInRoot(state.root, direct, true);
    if ((await lstat(join(state.root, resolved)).catch(() => undefined))?.isDirectory()) {
      dir = resolved;
      continue;
    }
    // Nothing there, a file, or a link leading nowhere useful: a directory takes its place.
    const host = join(state.root, direct);
    await rm(host, { recursive: true, force: true });
    await mkdir(host, 0o755).catch((err: unknown) => { throw ioError(`the staging directory ${host}`, err); });
    if (state.opts.owner) await chown(host, state.opts.owner.uid, state.opts.owner.gid);
    state.madeForTo.push(direct);
    dir = direct;
  }
  return dir;
}

async function copyChildren(state: CopyState, hostDir: string, imageDir: string): Promise<void> {
  throwIfAborted(state.opts.signal);
  const names = await readdir(hostDir).catch((err: unknown) => { throw ioError(`the copyToRoot source ${hostDir}`, err); });
  for (const name of names.sort(comparePaths)) {
    const from = join(hostDir, name);
    const st = await lstat(from).catch((err: unknown) => { throw ioError(`the copyToRoot source ${from}`, err); });
    await copyEntry(state, from, st, joinPath(imageDir, name));
  }
}

/** Copies one source path to image path `to`, whose parent exists as a real directory of the root. */
async function copyEntry(state: CopyState, from: string, st: Stats, to: string): Promise<void> {
  const { root } = state;
  let target = to;
  const existing = await lstat(join(root, target)).catch(() => undefined);
  if (st.isDirectory()) {
    if (existing?.isSymbolicLink()) {
      const followed = await resolveInRoot(root, target, true);
      if ((await lstat(join(root, followed)).catch(() => undefined))?.isDirectory()) target = followed;
    }
    const host = join(root, target);
    const dirThere = (await lstat(host).catch(() => undefined))?.isDirectory() === true;
    if (!dirThere) {
      if (existing !== undefined) await rm(host, { recursive: true, force: true });
      await mkdir(host, 0o700).catch((err: unknown) => { throw ioError(`the staging directory ${host}`, err); });
    }
    await copyChildren(state, from, target);
    // The mode last: a read-only source directory must not stop its own children being copied.
    await setAttributes(state, host, st);
    return;
  }
  const host = join(root, target);
  if (existing !== undefined) await rm(host, { recursive: true, force: true });
  try {
    if (st.isFile()) await copyFileOnce(state, from, st, host);
    else if (st.isSymbolicLink()) {
      await symlink(await readlink(from), host);
      if (state.opts.owner) await lchown(host, state.opts.owner.uid, state.opts.owner.gid);
    } else if (st.isCharacterDevice() || st.isBlockDevice() || st.isFIFO()) {
      const { devmajor, devminor } = deviceNumbers(st.rdev);
      await makeSpecialFile(host, st.isFIFO() ? "fifo" : st.isCharacterDevice() ? "char" : "block", devmajor, devminor);
      await setAttributes(state, host, st);
    }
    // A socket exists only while its server runs; layers never carry one.
  } catch (err) {
    throw ioError(`the staging copy ${host} of ${from}`, err);
  }
}

/** A regular file, or a hardlink to its earlier copy when the source file has several names. */
async function copyFileOnce(state: CopyState, from: string, st: Stats, host: string): Promise<void> {
  const key = `${st.dev}:${st.ino}`;
  const earlier = st.nlink > 1 ? state.inodes.get(key) : undefined;
  if (earlier !== undefined && (await lstat(earlier.path).catch(() => undefined))?.ino === earlier.ino) {
    await link(earlier.path, host);
    return;
  }
  await copyFile(from, host, constants.COPYFILE_EXCL);
  await setAttributes(state, host, st);
  if (st.nlink > 1) state.inodes.set(key, { path: host, ino: (await lstat(host)).ino });
}

/** Owner first (chown clears setuid and setgid), then the source's mode. */
async function setAttributes(state: CopyState, host: string, st: Stats): Promise<void> {
  if (state.opts.owner) await chown(host, state.opts.owner.uid, state.opts.owner.gid);
  await chmod(host, st.mode & 0o7777);
}

/**
 * Runs an extraCommands script: `/bin/sh -c SCRIPT` in `dir` (not chrooted), with
 * gantry's own environment. A non-zero exit fails with its status and last output.
 */
export async function runExtraCommands(script: string, dir: string, signal?: AbortSignal): Promise<void> {
  const opts: Parameters<typeof runCaptured>[2] = { cwd: dir, env: process.env };
  if (signal) opts.signal = signal;
  checkScriptResult("the extraCommands script", await runCaptured("/bin/sh", ["-c", script], opts));
}
