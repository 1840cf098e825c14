import type { ContentStore } from "../../model/content-store.js";
import type { ProgressListener } from "../../model/progress.js";
import type { BlobLocationBook } from "./blob-locations.js";
import type { ClientOptions } from "./client.js";
import type { AccessOptions } from "../transport.js";

export { formatSize } from "../../util/format.js";

/** Options every registry operation takes. */
export interface RegistryOptions extends ClientOptions {
  /** With a store, pulled blobs, manifests and configs are kept by digest and read from it afterwards. */
  cache?: ContentStore;
  /** Where blobs were seen beyond this process: pushes mount from it, pushes and pulls add to it. */
  blobLocations?: BlobLocationBook;
  onProgress?: ProgressListener;
}

/** The registry client's options from a caller's access settings (and an optional blob cache). */
export function registryOptionsFrom(access: AccessOptions, cache?: ContentStore): RegistryOptions {
  const out: RegistryOptions = {};
  if (access.creds !== undefined) out.creds = access.creds;
  if (access.tlsVerify !== undefined) out.tlsVerify = access.tlsVerify;
  if (access.env !== undefined) out.env = access.env;
  if (access.signal) out.signal = access.signal;
  if (access.onProgress) out.onProgress = access.onProgress;
  if (access.blobLocations) out.blobLocations = access.blobLocations;
  if (cache) out.cache = cache;
  return out;
}

/** A digest cut to `sha256:` and 12 hex digits, for progress lines. */
export function shortDigest(digest: string): string {
  return digest.slice(0, "sha256:".length + 12);
}
