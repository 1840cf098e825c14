import { resolve } from "node:path";
import { throwIfAborted, SpecError } from "../model/errors.js";
import { sharedMergedTree } from "../layer/merged-tree.js";
import { accessOf, type AccessOptions } from "../transports/transport.js";
import { readImageFor } from "./source.js";
import { writeDirAtomically } from "../util/atomic.js";
import { STDOUT, extractTree, writeTar } from "../flatten/flatten.js";

/** Where an export goes: a directory, or one tar of the root file system. */
export type ExportFormat = "dir" | "tar";

/** What `exportImage` flattens and where it writes the result. */
export interface ExportOptions extends AccessOptions {
  /** Any readable image reference (SPEC "Image references"). */
  ref: string;
  /** A directory, or a tar file (a name ending in `.tar`, or `format: "tar"`). */
  output: string;
  /** Default: "tar" when `output` ends in `.tar`, else "dir". */
  format?: ExportFormat;
  /** NAME[:TAG] of one image in a multi-image source. */
  pick?: string;
  /** `os/arch[/variant]` of a multi-platform source; the host's by default. */
  platform?: string;
}

/** What an export wrote. */
export interface ExportResult {
  /** The directory or tar written (`-` for standard output). */
  output: string;
  format: ExportFormat;
  /** Paths in the flattened root. */
  entries: number;
  /** Layers applied, base first. */
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
  if (toStdout && opts.format === "dir") throw new SpecError("export to standard output (-o -) writes a tar; give a directory to export into instead");
  const output = toStdout ? STDOUT : resolve(opts.output);
  const image = await readImageFor(opts.ref, {
    ...accessOf(opts), ...(opts.pick !== undefined ? { pick: opts.pick } : {}), ...(opts.platform !== undefined ? { platform: opts.platform } : {}),
  });
  progress({ step: "export", message: `reading ${image.layers.length} layer(s) of ${opts.ref}` });
  const tree = await sharedMergedTree(image.layers, signal ? { signal } : {});
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
