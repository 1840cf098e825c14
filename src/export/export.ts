import { mkdtemp, rm } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { tmpdir } from "node:os";
import { pipeline } from "node:stream/promises";
import { createWriteStream } from "node:fs";
import { GantryError, ioError, throwIfAborted } from "../model/errors.js";
import type { Layer } from "../model/image.js";
import { mergedTree, type FileTree } from "../layer/tree.js";
import { tarStream } from "../layer/tar-writer.js";
import { readImage } from "../formats/read.js";
import { registryOptionsFrom, type RegistryAccess } from "../registry/options.js";
// Installs the docker:// reader.
import "../registry/register.js";
import { writeDirAtomically, writeFileAtomically } from "../util/atomic.js";
import { planHardlinks } from "./hardlinks.js";
import { streamSurvivingFiles } from "./layer-files.js";
import { DirectoryWriter } from "./dir-writer.js";
import { SpoolWriter } from "./tar-writer.js";

export type ExportFormat = "dir" | "tar";

export interface ExportOptions extends RegistryAccess {
  /** Any readable image reference (SPEC "Image references"). */
  ref: string;
  /** A directory, or a tar file (a name ending in `.tar`, or `format: "tar"`). */
  output: string;
  /** Default: "tar" when `output` ends in `.tar`, else "dir". */
  format?: ExportFormat;
  /** NAME[:TAG] of one image in a multi-image source. */
  pick?: string;
}

export interface ExportResult {
  output: string;
  format: ExportFormat;
  /** Paths in the flattened root. */
  entries: number;
  layers: number;
  /** Device nodes not made because the export did not run as root. */
  skippedDevices: string[];
}

/**
 * The merged root file system of an image, whiteouts applied, as a directory or a
 * deterministic tar. The layers' merged tree decides what survives; each layer is then
 * streamed once and only the surviving files' bytes are written (nothing is written and
 * then deleted). The output appears atomically; a hostile layer fails the export with an
 * UnsafePathError naming the layer and the entry, and leaves `output` as it was.
 */
export async function exportImage(opts: ExportOptions): Promise<ExportResult> {
  const { signal } = opts;
  const progress = opts.onProgress ?? (() => {});
  const toStdout = opts.output === STDOUT;
  const format = toStdout ? "tar" : opts.format ?? (/\.tar$/i.test(opts.output) ? "tar" : "dir");
  if (toStdout && opts.format === "dir") throw new GantryError("SPEC_INVALID", "export to standard output (-o -) writes a tar; give a directory to export into instead");
  const output = toStdout ? STDOUT : resolve(opts.output);
  const readOpts: Parameters<typeof readImage>[1] = {};
  if (signal) readOpts.signal = signal;
  if (opts.pick !== undefined) readOpts.pick = opts.pick;
  readOpts.registry = registryOptionsFrom(opts);
  const image = await readImage(opts.ref, readOpts);
  progress({ step: "export", message: `reading ${image.layers.length} layer(s) of ${opts.ref}` });
  const tree = await mergedTree(image.layers, signal ? { signal } : {});
  throwIfAborted(signal);

  let skippedDevices: string[] = [];
  if (format === "dir") {
    progress({ step: "export", message: `writing ${tree.size} paths to ${opts.output}` });
    await writeDirAtomically(output, async (dir) => {
      skippedDevices = await extractTree(image.layers, tree, dir, signal);
    });
  } else {
    progress({ step: "export", message: `writing ${tree.size} paths to the tar ${opts.output}` });
    await writeTar(image.layers, tree, output, signal);
  }
  return { output: opts.output, format, entries: tree.size, layers: image.layers.length, skippedDevices };
}

/**
 * Flattens `layers` (base first) into the existing empty directory `dir`, with the same
 * safety rules as `exportImage`. Returns the merged tree it laid out.
 */
export async function extractLayers(layers: readonly Layer[], dir: string, opts: { signal?: AbortSignal } = {}): Promise<FileTree> {
  const tree = await mergedTree(layers, opts.signal ? { signal: opts.signal } : {});
  await extractTree(layers, tree, dir, opts.signal);
  return tree;
}

async function extractTree(layers: readonly Layer[], tree: FileTree, dir: string, signal: AbortSignal | undefined): Promise<string[]> {
  const links = planHardlinks(tree);
  const writer = new DirectoryWriter(dir);
  await writer.makeDirectories(tree, signal);
  await streamSurvivingFiles(layers, tree, links, writer, signal);
  await writer.finish(tree, links, signal);
  return writer.skippedDevices;
}

/** `-o -`: the tar goes to standard output. */
const STDOUT = "-";

async function writeTar(layers: readonly Layer[], tree: FileTree, output: string, signal: AbortSignal | undefined): Promise<void> {
  const links = planHardlinks(tree);
  // The spool sits beside the output, on the file system the user chose for it.
  const spoolParent = output === STDOUT ? join(tmpdir(), "gantry-export") : join(dirname(output), `.${basename(output)}.gantry-spool`);
  const spool = await mkdtemp(`${spoolParent}-`)
    .catch((err: unknown) => { throw ioError(`the output ${output}`, err); });
  try {
    const writer = new SpoolWriter(spool);
    await streamSurvivingFiles(layers, tree, links, writer, signal);
    const entries = writer.entries(tree, links);
    const tar = () => tarStream(entries, signal ? { signal } : {});
    if (output === STDOUT) await pipeline(tar(), process.stdout);
    else await writeFileAtomically(output, async (temp) => { await pipeline(tar(), createWriteStream(temp)); });
  } finally {
    await rm(spool, { recursive: true, force: true });
  }
}
