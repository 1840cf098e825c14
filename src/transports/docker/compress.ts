import { createReadStream, createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { makeTempDir } from "../../util/temp-names.js";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { compressor } from "../../compression/compression.js";
import { ioError } from "../../model/errors.js";
import type { Layer } from "../../model/image.js";
import { makeLayer } from "../../image/layer.js";
import { measuring } from "../../model/verify.js";

/**
 * Registries are for compressed layers: as skopeo does, an uncompressed layer (a
 * `docker save` archive's) is gzipped before it is pushed. The compressed bytes go to a
 * temporary file, since their digest must be known before the upload and the manifest.
 * The diff_id, and so the config, stay the same.
 */
export interface CompressedLayers {
  readonly layers: Layer[];
  /** Removes the temporary files; call once the push is over. */
  dispose(): Promise<void>;
}

/**
 * The layers with each uncompressed one gzipped into a temporary file (`describe(i)` names layer i in
 * messages); as they are when none is uncompressed. IoError when a layer cannot be compressed.
 */
export async function gzipUncompressedLayers(layers: readonly Layer[], describe: (i: number) => string, signal?: AbortSignal): Promise<CompressedLayers> {
  if (layers.every((l) => l.compression !== "none")) return { layers: [...layers], dispose: async () => {} };
  let dir: string;
  try {
    dir = await makeTempDir(tmpdir(), "gantry-push-");
  } catch (err) {
    throw ioError(`the temporary directory ${tmpdir()}`, err);
  }
  const dispose = (): Promise<void> => rm(dir, { recursive: true, force: true });
  try {
    const out: Layer[] = [];
    for (const [i, layer] of layers.entries()) {
      out.push(layer.compression === "none" ? await gzipToFile(layer, join(dir, `layer-${i}.gz`), describe(i), signal) : layer);
    }
    return { layers: out, dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}

async function gzipToFile(layer: Layer, path: string, describe: string, signal?: AbortSignal): Promise<Layer> {
  const measure = measuring();
  try {
    await pipeline(await layer.openUncompressed(signal), compressor("gzip"), measure.stream, createWriteStream(path), signal ? { signal } : {});
  } catch (err) {
    throw ioError(`compressing ${describe} into ${path}`, err);
  }
  const { digest, size } = await measure.result;
  return makeLayer({
    digest, diffId: layer.diffId, size, compression: "gzip", describe: `${describe} (gzipped for the registry)`,
    openRaw: (): Promise<Readable> => Promise.resolve(createReadStream(path)),
  });
}
