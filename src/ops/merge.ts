import type { Digest } from "../model/digest.js";
import { throwIfAborted, SpecError } from "../model/errors.js";
import type { Image } from "../model/image.js";
import { repoTagKey } from "../transports/image-name.js";
import { resolveReference } from "../transports/reference.js";
import { accessOf, type AccessOptions, type WriteItem } from "../transports/transport.js";
import { readImageFor } from "./source.js";

/** What `mergeImages` puts in one archive, and where. */
export interface MergeOptions extends AccessOptions {
  /** Image references, one image each (`docker-archive:PATH:NAME:TAG` picks one of several). */
  sources: readonly string[];
  /** Where to write, a docker-archive path by default (any writable reference). */
  output: string;
}

/** One image of a merged archive, with every name it was given. */
export interface MergedImage { configDigest: Digest; repoTags: string[]; manifestDigest: Digest }

/** What a merge wrote. */
export interface MergeResult {
  /** The destination, as given. */
  output: string;
  images: MergedImage[];
}

/**
 * Several images in one archive: each blob once (the writer shares layers by digest),
 * every image with all the names its source gave it. The same image named by two
 * sources is written once with the names of both; one name given to two different
 * images is refused by the writer, naming the tag.
 */
export async function mergeImages(opts: MergeOptions): Promise<MergeResult> {
  const { signal } = opts;
  const progress = opts.onProgress ?? (() => {});
  if (opts.sources.length === 0) throw new SpecError("merge needs at least one source image; name the images to put in the archive");
  const output = await resolveReference(opts.output, "write");
  await output.checkWritable(accessOf(opts));
  const byConfig = new Map<Digest, { image: Image; repoTags: string[]; keys: Set<string> }>();
  for (const source of opts.sources) {
    throwIfAborted(signal);
    progress({ step: "merge", message: `reading ${source}` });
    const image = await readImageFor(source, accessOf(opts));
    let entry = byConfig.get(image.configDigest);
    if (!entry) byConfig.set(image.configDigest, (entry = { image, repoTags: [], keys: new Set() }));
    for (const tag of image.repoTags) {
      const key = repoTagKey(tag);
      if (entry.keys.has(key)) continue;
      entry.keys.add(key);
      entry.repoTags.push(tag);
    }
  }
  const images = [...byConfig.values()];
  const items: WriteItem[] = images.map(({ image, repoTags }) => ({ doc: image, repoTags }));
  progress({ step: "write", message: `writing ${items.length} image(s) to ${opts.output}` });
  const written = await output.write(items, accessOf(opts));
  return {
    output: opts.output,
    images: images.map(({ image, repoTags }, i) => ({
      configDigest: image.configDigest,
      repoTags: [...repoTags],
      manifestDigest: written.digests[i] ?? image.digest,
    })),
  };
}
