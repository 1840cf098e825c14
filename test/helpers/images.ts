import type { Image, ImageSummary } from "../../src/model/image.js";
import { readImageFor, type SourceOptions } from "../../src/ops/source.js";
import { resolveReference } from "../../src/transports/reference.js";
import type { WriteItem, WriteOptions, WriteResult } from "../../src/transports/transport.js";

/** Reading and writing images through the transport list, as the operations do, for tests. */

export async function readImage(ref: string, opts: SourceOptions = {}): Promise<Image> {
  return readImageFor(ref, opts);
}

export async function listImages(ref: string): Promise<ImageSummary[]> {
  return (await resolveReference(ref, "read")).list();
}

export async function writeImage(dest: string, items: readonly WriteItem[], opts: WriteOptions = {}): Promise<WriteResult> {
  const ref = await resolveReference(dest, "write");
  await ref.checkWritable(opts);
  return ref.write(items, opts);
}
