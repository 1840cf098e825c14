import type { BlobStore } from "../../cache/blob-store.js";
import type { ProgressListener } from "../../model/progress.js";
import type { ClientOptions } from "./client.js";

export { formatSize } from "../../util/format.js";

/** Options every registry operation takes. */
export interface RegistryOptions extends ClientOptions {
  /** With a store, pulled blobs, manifests and configs are kept by digest and read from it afterwards. */
  cache?: BlobStore;
  onProgress?: ProgressListener;
}

/** What a caller says about reaching registries; every library entry point accepts it. */
export interface RegistryAccess {
  /** `USER:PASS`; otherwise `$REGISTRY_AUTH_FILE`, `$DOCKER_CONFIG/config.json`, `~/.docker/config.json`. */
  creds?: string;
  /** false: plain HTTP to a registry that is not on loopback. */
  tlsVerify?: boolean;
  /** Where DOCKER_CONFIG, REGISTRY_AUTH_FILE and HOME are read from; default process.env. */
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}

/** The registry client's options from a caller's access settings (and an optional blob cache). */
export function registryOptionsFrom(access: RegistryAccess, cache?: BlobStore): RegistryOptions {
  const out: RegistryOptions = {};
  if (access.creds !== undefined) out.creds = access.creds;
  if (access.tlsVerify !== undefined) out.tlsVerify = access.tlsVerify;
  if (access.env !== undefined) out.env = access.env;
  if (access.signal) out.signal = access.signal;
  if (access.onProgress) out.onProgress = access.onProgress;
  if (cache) out.cache = cache;
  return out;
}

export function shortDigest(digest: string): string {
  return digest.slice(0, "sha256:".length + 12);
}
