import type { Image } from "../../model/image.js";
import { InvalidReferenceError } from "../../model/errors.js";
import { imageForPlatform, wantedPlatform } from "../../image/select.js";
import type { Transport } from "../transport.js";
import { registryOptionsFrom, type RegistryOptions } from "./options.js";
import { readRegistry } from "./pull.js";
import { pushImage } from "./push.js";
import { DOCKER_TRANSPORT, formatReference, parseRegistryReference, type RegistryReference } from "./reference.js";

/**
 * `docker://HOST/REPO[:TAG][@sha256:HEX]`: a registry speaking the distribution API.
 * Manifests and indexes are read and written as they are, so digests carry across.
 */
export const dockerTransport: Transport<RegistryReference> = {
  name: "docker",
  prefix: DOCKER_TRANSPORT,
  holdsIndexes: true,
  mutable: (ref) => ref.digest === undefined,
  registry: (ref) => ref.registry,
  parse: (_body, spelled) => parseRegistryReference(spelled),
  format: (ref) => `${DOCKER_TRANSPORT}${formatReference(ref)}`,
  read: (ref, opts) => readRegistry(ref, registryOptionsFrom(opts, opts.cache)),
  async write(ref, items, opts) {
    const [item, ...more] = items;
    if (item === undefined || more.length > 0) {
      throw new InvalidReferenceError(`${dockerTransport.format(ref)} names one image, but ${items.length} were given; push them one at a time, each to its own tag`);
    }
    const pushOpts = {
      ...registryOptionsFrom(opts),
      ...(opts.chunkThreshold !== undefined ? { chunkThreshold: opts.chunkThreshold } : {}),
      ...(opts.chunkSize !== undefined ? { chunkSize: opts.chunkSize } : {}),
      ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}),
      ...(opts.compressLayers !== undefined ? { compressLayers: opts.compressLayers } : {}),
    };
    const result = await pushImage(item.doc, ref, pushOpts);
    return { digests: [result.digest], bytes: result.bytes, blobs: { uploaded: result.uploaded, skipped: result.skipped, mounted: result.mounted } };
  },
};

/**
 * A registry image for one platform, read straight from a reference: the library's and the
 * tests' shortcut past the transport list.
 */
export async function readRegistryImage(ref: string, opts: RegistryOptions & { platform?: string } = {}): Promise<Image> {
  const reference = parseRegistryReference(ref);
  const doc = await readRegistry(reference, opts);
  return imageForPlatform(doc, wantedPlatform(opts.platform), formatReference(reference), opts.signal);
}
