import { rm } from "node:fs/promises";
import { makeTempDir } from "../util/temp-names.js";
import { basename, dirname, join } from "node:path";
import { tmpdir } from "node:os";
import { pipeline } from "node:stream/promises";
import { ioError } from "../model/errors.js";
import type { Layer } from "../model/image.js";
import { mergedTree } from "../layer/merged-tree.js";
import type { FileTree } from "../layer/tree.js";
import { tarStream } from "../layer/tar-writer.js";
import { writeStreamAtomically } from "../util/atomic.js";
import { planHardlinks } from "./hardlinks.js";
import { streamSurvivingFiles } from "./layer-files.js";
import { DirectoryWriter } from "./dir-writer.js";
import { SpoolWriter } from "./spool-writer.js";

/**
 * Flattening: the merged root file system of a list of layers, laid out in a directory or
 * written as one deterministic tar. Used by `gantry export` and by runAsRoot's staging.
 */

/**
 * Flattens `layers` (base first) into the existing empty directory `dir`, with the same
 * safety rules as `exportImage`. Returns the merged tree it laid out.
 */
export async function extractLayers(layers: readonly Layer[], dir: string, opts: { signal?: AbortSignal } = {}): Promise<FileTree> {
  const tree = await mergedTree(layers, opts.signal ? { signal: opts.signal } : {});
  await extractTree(layers, tree, dir, opts.signal);
  return tree;
}

/**
 * Lays out `tree`, the merged tree of `layers` (base first), in the existing empty directory `dir`.
 * Returns the paths of the device nodes left out because only root can make them.
 */
export async function extractTree(layers: readonly Layer[], tree: FileTree, dir: string, signal: AbortSignal | undefined): Promise<string[]> {
  const links = planHardlinks(tree);
  const writer = new DirectoryWriter(dir);
  await writer.makeDirectories(tree, signal);
  await streamSurvivingFiles(layers, tree, links, writer, signal);
  await writer.finish(tree, links, signal);
  return writer.skippedDevices;
}

/** `-o -`: the tar goes to standard output. */
export const STDOUT = "-";

/**
 * Writes `tree`, the merged tree of `layers`, as one deterministic tar to `output` (atomically) or
 * to standard output for STDOUT. File bytes are spooled first, in a temporary directory beside the output.
 */
export async function writeTar(layers: readonly Layer[], tree: FileTree, output: string, signal: AbortSignal | undefined): Promise<void> {
  const links = planHardlinks(tree);
  // The spool sits beside the output, on the file system the user chose for it.
  const spool = await (output === STDOUT ? makeTempDir(tmpdir(), "gantry-export-") : makeTempDir(dirname(output), `.${basename(output)}.gantry-spool-`))
    .catch((err: unknown) => { throw ioError(`the output ${output}`, err); });
  try {
    const writer = new SpoolWriter(spool);
    await streamSurvivingFiles(layers, tree, links, writer, signal);
    const entries = writer.entries(tree, links);
    const tar = () => tarStream(entries, signal ? { signal } : {});
    if (output === STDOUT) await pipeline(tar(), process.stdout);
    else await writeStreamAtomically(output, async (out) => { await pipeline(tar(), out); });
  } finally {
    await rm(spool, { recursive: true, force: true });
  }
}
