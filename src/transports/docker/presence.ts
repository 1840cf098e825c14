import type { Digest } from "../../model/digest.js";
import type { RegistryClient } from "./client.js";
import { registryFailure } from "./failure.js";
import { discard } from "./http.js";

/**
 * Whether a repository holds a manifest (by tag or digest) or a blob: HEAD, 200 or 404,
 * anything else an error naming the registry and what was asked.
 */

async function present(client: RegistryClient, repository: string, path: string, what: string): Promise<boolean> {
  const action = `look for ${what}`;
  const retries = client.step(action);
  const response = await client.request({
    method: "HEAD", url: `/v2/${repository}/${path}`, scopes: [{ repository, actions: ["pull"] }], idempotent: true, retries,
    headers: { accept: "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json" },
  });
  await discard(response);
  if (response.status === 200) return true;
  if (response.status === 404) return false;
  throw await registryFailure(response, { registry: client.registry, repository, action, retries });
}

/** Whether `repository` holds a manifest by that tag or digest (HEAD); `what` names it in errors. */
export function hasManifest(client: RegistryClient, repository: string, tagOrDigest: string, what: string): Promise<boolean> {
  return present(client, repository, `manifests/${tagOrDigest}`, what);
}

/** Whether `repository` holds the blob `digest` (HEAD); `what` names it in errors. */
export function hasBlob(client: RegistryClient, repository: string, digest: Digest, what: string): Promise<boolean> {
  return present(client, repository, `blobs/${digest}`, what);
}
