import { copyingInto, fileRegionReader, givingBackFileWriter, givingBackWriterAt, removeWhenClosed } from "../util/io.js";
import { pipeline } from "node:stream/promises";
import type { Transform, Writable } from "node:stream";
import { GantryError, ioError, AbortedError } from "../model/errors.js";
import type { Layer } from "../model/image.js";
import { makeLayer } from "../image/layer.js";
import type { ContentStore } from "../model/content-store.js";
import { hasherDigest, newHasher, type Digest } from "../model/digest.js";
import type { Compression } from "../model/mediatypes.js";
import { measuring } from "../model/verify.js";
import { compressor, compressorInputSpace } from "../compression/compression.js";
import type { LayerEntry } from "./differ.js";
import { approximateTarSize, writeTar } from "./tar-writer.js";
import { BlockSink } from "./block-sink.js";
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
  /**
   * Where the stored bytes are also written: a file (its path, and open) and the offset they start at (a
   * layer packed straight into its archive: archive/assembly.ts). `only`: not into the
   * store at all, the layer then read from there (a build with no cache to keep it in).
   */
  alsoInto?: { path: string; fd: number; position: number; only: boolean } | undefined;
}

/**
 * The one layer pipeline: tar (written straight into blocks) → sha256 of each block (the
 * diffId) → compressor → sha256 and size (the digest) → a temporary file in the blob store,
 * renamed to its digest once complete; and, with `alsoInto`, into the output archive at the
 * layer's place (instead of the store, with `only`). Every byte is hashed once, as it
 * streams; nothing is held whole in memory.
 */
export async function packLayer(entries: readonly LayerEntry[], opts: PackOptions): Promise<Layer> {
  const into = opts.alsoInto;
  // Where the layer alone lives when it is not stored: its place in the output archive.
  const onlyInto = into?.only === true ? into : undefined;
  const tempPath = onlyInto ? undefined : await opts.store.tempPath();
  const expectedSize = approximateTarSize(entries);
  const meter = byteMeter(opts.onProgress, "pack", `pack ${opts.describe}`, `packing ${opts.describe}`, expectedSize);
  const diffIdHash = newHasher();
  let tarSize = 0;
  const compress = compressor(opts.compression, opts.level, undefined, expectedSize);
  const blocks = new BlockSink(compress, compressorInputSpace(compress) ?? "fresh", (block) => {
    diffIdHash.update(block);
    tarSize += block.length;
    meter.add(block.length);
  });
  // Uncompressed, the stored bytes are the tar: one hash serves as diffId and digest.
  const stored = opts.compression === "none" ? undefined : measuring();
  // The compressor lends its blocks (loaned-buffers.ts): freed once written, not at the next GC.
  const file = tempPath === undefined ? undefined : givingBackFileWriter(tempPath);
  const ends: Array<Transform | Writable> = onlyInto
    ? [givingBackWriterAt(onlyInto.fd, onlyInto.position)]
    : [...(into ? [copyingInto(into.fd, into.position)] : []), ...(file ? [file] : [])];
  const options = opts.signal === undefined ? {} : { signal: opts.signal };
  let diffId, digest, size;
  try {
    const written = pipeline([compress, ...(stored ? [stored.stream] : []), ...ends], options);
    const tarred = writeTar(entries, blocks, { signal: opts.signal, fileDigests: opts.fileDigests }).then(
      () => { compress.end(); },
      (err: unknown) => { compress.destroy(err as Error); throw err; },
    );
    await firstCause(tarred, written);
    diffId = hasherDigest(diffIdHash);
    size = tarSize;
    if (stored !== undefined) ({ digest, size } = await stored.result);
    else digest = diffId;
    if (tempPath !== undefined) await opts.store.commit(tempPath, digest);
    meter.end();
  } catch (err) {
    if (file !== undefined && tempPath !== undefined) await removeWhenClosed(file, tempPath);
    if (opts.signal?.aborted) throw new AbortedError(opts.signal.reason);
    if (err instanceof GantryError) throw err;
    throw ioError(`${onlyInto ? "the output archive" : `the blob store ${opts.store.root}`} (writing ${opts.describe})`, err);
  }
  const store = opts.store;
  const openRaw = onlyInto
    ? () => Promise.resolve(fileRegionReader(onlyInto.path, onlyInto.position, size))
    : () => store.open(digest);
  return makeLayer({ digest, diffId, size, compression: opts.compression, describe: opts.describe, openRaw, hashedOnWrite: true });
}

/**
 * Waits for the tar and the stream it feeds; if either fails, throws the cause: the tar's
 * own error (a source that changed, say) over the stream's, and the stream's (a full disk)
 * over the tar's, which then only says that it could not write.
 */
async function firstCause(tarred: Promise<void>, written: Promise<void>): Promise<void> {
  const [tar, stream] = await Promise.allSettled([tarred, written]);
  if (tar.status === "rejected" && tar.reason instanceof GantryError) throw tar.reason;
  if (stream.status === "rejected") throw stream.reason;
  if (tar.status === "rejected") throw tar.reason;
}
