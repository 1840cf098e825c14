import { digestHex } from "../../model/digest.js";
import type { DockerArchiveManifestEntry } from "../../model/oci.js";
import { writeTarTo, type ArchiveWriteOptions } from "../../archive/archive-tar.js";
import { layoutEntries, planLayout, type ImageToWrite, type LayoutPlan, type WriteResult } from "../layout-plan.js";
import { blobPath } from "../oci/names.js";
import { LEGACY_REPOSITORIES } from "./legacy.js";
import { DOCKER_MANIFEST } from "./read.js";

export type { ArchiveWriteOptions } from "../../archive/archive-tar.js";
export type { ImageToWrite, WriteResult } from "../layout-plan.js";

/**
 * The archive a build writes: one tar that is both a docker-archive and an OCI image
 * layout, as Docker 25+ `docker save` writes it. `docker load`, `podman load` and
 * skopeo (docker-archive: and oci-archive:) all read it.
 */

/** docker's `manifest.json`: per image its config, RepoTags and layer files. */
function dockerManifest(plan: LayoutPlan): Buffer {
  const entries: DockerArchiveManifestEntry[] = plan.images.map(({ image, tags }) => ({
    Config: blobPath(image.configDigest),
    RepoTags: tags.map((t) => t.familiar),
    Layers: image.layers.map((l) => blobPath(l.digest)),
  }));
  return Buffer.from(JSON.stringify(entries));
}

/** docker's `repositories`: `{NAME: {TAG: top layer HEX}}`, keys sorted so the bytes are stable. */
function repositories(plan: LayoutPlan): Buffer {
  const repos = new Map<string, Map<string, string>>();
  for (const { image, tags } of plan.images) {
    const top = image.layers[image.layers.length - 1];
    if (!top) continue; // an image with no layers has nothing for a legacy loader to point at
    for (const tag of tags) {
      const byTag = repos.get(tag.familiarName) ?? new Map<string, string>();
      byTag.set(tag.tag, digestHex(top.digest));
      repos.set(tag.familiarName, byTag);
    }
  }
  const sortedObject = <T>(m: Map<string, T>): Record<string, T> => Object.fromEntries([...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return Buffer.from(JSON.stringify(sortedObject(new Map([...repos.entries()].map(([name, tags]) => [name, sortedObject(tags)])))));
}

export async function writeArchive(dest: string, images: readonly ImageToWrite[], opts: ArchiveWriteOptions = {}): Promise<WriteResult> {
  const plan = planLayout(images);
  const entries = layoutEntries(plan);
  entries.push({ name: DOCKER_MANIFEST, bytes: dockerManifest(plan) }, { name: LEGACY_REPOSITORIES, bytes: repositories(plan) });
  const bytes = await writeTarTo(dest, entries, opts);
  return { manifestDigests: plan.images.map((i) => i.manifest.digest), bytes };
}
