import type { Image, ImageOrIndex } from "../model/image.js";
import { imageForPlatform, wantedPlatform } from "../image/select.js";
import { resolveReference, type ImageReference } from "../transports/reference.js";
import type { ReadOptions } from "../transports/transport.js";

/**
 * Reading what a reference names, the same way for every operation: the document as the
 * source holds it (an image or an index), or one image of it for a platform.
 */

/** How readSource and readImageFor read a reference: the transport's read options and the platform to pick. */
export interface SourceOptions extends ReadOptions {
  /** `os/arch[/variant]` picked from an index; the host's by default. */
  platform?: string | undefined;
}

/** The read options for a transport, from an operation's options (the platform is the operation's). */
function readOptions(opts: SourceOptions): ReadOptions {
  const { platform: _platform, ...rest } = opts;
  return rest;
}

/**
 * The document `ref` names, as its source holds it (an image or an index), with the reference resolved.
 * Throws InvalidReferenceError for a reference that does not parse, UnsupportedError for a place that cannot be read.
 */
export async function readSource(ref: string | ImageReference, opts: SourceOptions = {}): Promise<{ ref: ImageReference; doc: ImageOrIndex }> {
  const reference = typeof ref === "string" ? await resolveReference(ref, "read") : ref;
  return { ref: reference, doc: await reference.read(readOptions(opts)) };
}

/** One image of what `ref` names: the image itself, or the index's image for the platform. */
export async function readImageFor(ref: string | ImageReference, opts: SourceOptions = {}): Promise<Image> {
  const want = wantedPlatform(opts.platform);
  const { ref: reference, doc } = await readSource(ref, opts);
  return imageForPlatform(doc, want, reference.toString(), opts.signal);
}
