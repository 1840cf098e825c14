import { finished } from "node:stream/promises";
import { extract as tarExtract, type Header } from "tar-stream";
import { FormatError, GantryError, AbortedError } from "../model/errors.js";
import type { Layer } from "../model/image.js";

/** One entry of a layer's tar: its header, and its body as an async iterable of chunks. */
export type TarEntry = { header: Header } & AsyncIterable<Buffer>;

/**
 * Runs `visit` on each entry of a layer's uncompressed tar, in order. The layer's stream
 * verifies its diff_id only at its end, so nothing a visitor did counts until this
 * resolves; a damaged layer rejects with an error naming it. A visitor must consume or
 * `drain` each entry's body.
 */
export async function forEachLayerEntry(
  layer: Layer, layerName: string, signal: AbortSignal | undefined,
  visit: (entry: TarEntry) => Promise<void>,
): Promise<void> {
  const source = await layer.openUncompressed(signal);
  const extract = tarExtract();
  const sourceDone = finished(source);
  sourceDone.catch(() => {});
  const onAbort = (): void => { source.destroy(new AbortedError(signal?.reason)); };
  signal?.addEventListener("abort", onAbort, { once: true });
  source.on("error", (err) => extract.destroy(err));
  source.pipe(extract);
  try {
    for await (const entry of extract) await visit(entry as TarEntry);
    await sourceDone;
  } catch (err) {
    source.destroy();
    extract.destroy();
    if (err instanceof GantryError) throw err;
    throw new FormatError(`${layerName} is not a readable tar: ${(err as Error).message}; the image is damaged, fetch it again`, { cause: err });
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}

/** Reads and discards an entry's body. */
export async function drain(entry: AsyncIterable<Buffer>): Promise<void> {
  for await (const _ of entry) { /* discard */ }
}
