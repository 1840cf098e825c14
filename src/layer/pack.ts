import { fileWriter } from "../util/io.js";
import { rm } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import { GantryError, ioError, AbortedError } from "../model/errors.js";
import type { Layer } from "../model/image.js";
import { makeLayer } from "../image/layer.js";
import type { ContentStore } from "../model/content-store.js";
import type { Digest } from "../model/digest.js";
import type { Compression } from "../model/mediatypes.js";
import { measuring } from "../model/verify.js";
import { compressor } from "../compression/compression.js";
import type { LayerEntry } from "./differ.js";
import { approximateTarSize, tarStream } from "./tar-writer.js";
import { byteMeter, type ProgressListener } from "../model/progress.js";

/** How packLayer stores a layer; a fired `signal` rejects with an AbortedError and leaves no file in the store. */
export interface PackOptions {
  compression: Compression;
  /** Compressor level; the compressor's default when absent. The bytes depend on it alone. */
  level?: number;
  /** Where the blob is stored, under its digest. */
  store: ContentStore;
  signal?: AbortSignal | undefined;
  /** Names the layer in errors, e.g. "the new layer of app.json". */
  describe: string;
  /** Filled with the content digest of each regular file as it is packed (for the tree index). */
  fileDigests?: Map<string, Digest> | undefined;
  /** Told the uncompressed bytes packed so far (step "pack", labelled `describe`). */
  onProgress?: ProgressListener | undefined;
}

/**
 * The one layer pipeline: tar → sha256 (the diffId) → compressor → sha256 and size (the
 * digest) → a temporary file in the blob store, renamed to its digest once complete.
 * Every byte is hashed once, as it streams; nothing is held whole in memory.
 */
export async function packLayer(entries: readonly LayerEntry[], opts: PackOptions): Promise<Layer> {
  const tempPath = await opts.store.tempPath();
  const meter = byteMeter(opts.onProgress, "pack", `pack ${opts.describe}`, `packing ${opts.describe}`, approximateTarSize(entries));
  const uncompressed = measuring((n) => meter.add(n));
  // Uncompressed, the stored bytes are the tar: one hash serves as diffId and digest.
  const stored = opts.compression === "none" ? undefined : measuring();
  const tar = tarStream(entries, { signal: opts.signal, fileDigests: opts.fileDigests });
  const file = fileWriter(tempPath);
  const options = opts.signal === undefined ? {} : { signal: opts.signal };
  let diffId, digest, size;
  try {
    if (stored === undefined) await pipeline(tar, uncompressed.stream, file, options);
    else await pipeline(tar, uncompressed.stream, compressor(opts.compression, opts.level), stored.stream, file, options);
    ({ digest: diffId, size } = await uncompressed.result);
    if (stored !== undefined) ({ digest, size } = await stored.result);
    else digest = diffId;
    await opts.store.commit(tempPath, digest);
    meter.end();
  } catch (err) {
    await rm(tempPath, { force: true });
    if (opts.signal?.aborted) throw new AbortedError(opts.signal.reason);
    if (err instanceof GantryError) throw err;
    throw ioError(`the blob store ${opts.store.root} (writing ${opts.describe})`, err);
  }
  const store = opts.store;
  return makeLayer({ digest, diffId, size, compression: opts.compression, describe: opts.describe, openRaw: () => store.open(digest), hashedOnWrite: true });
}
