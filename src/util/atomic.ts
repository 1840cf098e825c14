import { open, rename, rm, stat } from "node:fs/promises";
import { makeTempDir, ownerTag, sweepStale } from "./temp-names.js";
import type { WriteStream } from "node:fs";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import { ioError } from "../model/errors.js";
import { fileWriter, removeWhenClosed } from "./io.js";

/**
 * Atomic outputs: every command writes beside its destination under a hidden
 * temporary name and renames at the end, so a failure leaves DEST as it was.
 */

/** A failure to create something beside `dest`, blaming the directory when it is the directory's fault. */
function outputError(dest: string, err: unknown): Error {
  if ((err as NodeJS.ErrnoException)?.code === "ENOENT") {
    return ioError(`the output ${dest} cannot be written: its directory ${dirname(dest)}`, err);
  }
  return ioError(`the output ${dest}`, err);
}

/** What the temporary names beside `dest` start with (then util/temp-names.ts's owner tag). */
function tempPrefix(dest: string): string {
  return `.${basename(dest)}.gantry-`;
}

function tempNameBeside(dest: string): string {
  return join(dirname(dest), `${tempPrefix(dest)}${ownerTag()}${randomBytes(4).toString("hex")}.tmp`);
}

/** An empty temporary file beside a destination: write it, then commit (rename into place) or discard. */
export interface AtomicFile {
  /** Where to write. */
  readonly path: string;
  /** Rename into place. */
  commit(): Promise<void>;
  /** Remove the temporary file; safe to call after commit (does nothing then). */
  discard(): Promise<void>;
}

/**
 * Creates an AtomicFile for `dest`, first removing temporary files dead gantry processes left beside it.
 * Throws IoError when the file cannot be created, blaming the directory when it is missing.
 */
export async function atomicFile(dest: string): Promise<AtomicFile> {
  await sweepStale(dirname(dest), tempPrefix(dest));
  const path = tempNameBeside(dest);
  let committed = false;
  try {
    await (await open(path, "wx", 0o644)).close();
  } catch (err) {
    throw outputError(dest, err);
  }
  return {
    path,
    // No fsync: what atomicity promises is that a command that fails or is interrupted
    // leaves DEST as it was, which the rename gives; forcing hundreds of megabytes to disk
    // before it (as tar, cp, skopeo and docker save do not) doubled the time of large writes.
    async commit() {
      try {
        await rename(path, dest);
        committed = true;
      } catch (err) {
        throw ioError(`the output ${dest}`, err);
      }
    },
    async discard() {
      if (!committed) await rm(path, { force: true });
    },
  };
}

/** Runs `fill(tempPath)` and renames the result to `dest`; on failure removes the temporary file. */
export async function writeFileAtomically(dest: string, fill: (tempPath: string) => Promise<void>): Promise<void> {
  const f = await atomicFile(dest);
  try {
    await fill(f.path);
    await f.commit();
  } finally {
    await f.discard();
  }
}

/**
 * writeFileAtomically for a stream: `fill(out)` writes into a write stream to the temporary
 * file (made by `openStream`, fileWriter by default). On failure the stream is closed before the
 * file is removed: one destroyed before its file was open would still open, and so create,
 * the file beside `dest` after the removal (removeWhenClosed).
 */
export async function writeStreamAtomically(dest: string, fill: (out: WriteStream) => Promise<void>, openStream: (path: string) => WriteStream = fileWriter): Promise<void> {
  const f = await atomicFile(dest);
  const out = openStream(f.path);
  try {
    await fill(out);
    await f.commit();
  } catch (err) {
    // In place of f.discard(), which removes the file without waiting for the stream.
    await removeWhenClosed(out, f.path);
    throw err;
  }
}

/**
 * Builds a directory beside `dest` with `fill(tempDir)`, then swaps it into place:
 * an existing `dest` is moved aside and removed only after the new one is in place.
 */
export async function writeDirAtomically(dest: string, fill: (tempDir: string) => Promise<void>): Promise<void> {
  let tmp: string;
  try {
    tmp = await makeTempDir(dirname(dest), tempPrefix(dest));
  } catch (err) {
    throw outputError(dest, err);
  }
  try {
    await fill(tmp);
    const existed = await stat(dest).then(() => true, () => false);
    if (existed) {
      const old = tempNameBeside(dest);
      await rename(dest, old);
      await rename(tmp, dest);
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(tmp, dest);
    }
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw ioError(`the output directory ${dest}`, err);
  }
}
