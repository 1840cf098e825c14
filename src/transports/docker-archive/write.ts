import { digestHex } from "../../model/digest.js";
import { UnsupportedError } from "../../model/errors.js";
import type { Image } from "../../model/image.js";
import type { DockerArchiveManifestEntry } from "../../model/oci.js";
import { writeTarTo, type ArchiveEntry, type ArchiveWriteOptions } from "../../archive/archive-tar.js";
import type { RepoTag } from "../image-name.js";
import { layoutEntries, planLayout } from "../layout-plan.js";
import type { WriteItem, WriteResult } from "../transport.js";
import { blobPath } from "../oci/names.js";
import { DOCKER_MANIFEST, LEGACY_REPOSITORIES } from "./names.js";

/**
 * The archive gantry writes for docker-archive: one tar that is both a docker-archive and
 * an OCI image layout, as Docker 25+ `docker save` writes it. `docker load`, `podman load`
 * and skopeo (docker-archive: and oci-archive:) all read it. The layout part keeps each
 * image's manifest as the image holds it, so its digest survives the trip.
 */

interface ArchivedImage { image: Image; tags: readonly RepoTag[] }

/** docker's `manifest.json`: per image its config, RepoTags and layer files. */
function dockerManifest(images: readonly ArchivedImage[]): Buffer {
  const entries: DockerArchiveManifestEntry[] = images.map(({ image, tags }) => ({
    Config: blobPath(image.configDigest),
    RepoTags: tags.map((t) => t.familiar),
    Layers: image.layers.map((l) => blobPath(l.digest)),
  }));
  return Buffer.from(JSON.stringify(entries));
}

/** docker's `repositories`: `{NAME: {TAG: top layer HEX}}`, keys sorted so the bytes are stable. */
function repositories(images: readonly ArchivedImage[]): Buffer {
  const repos = new Map<string, Map<string, string>>();
  for (const { image, tags } of images) {
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

/** Every entry of the archive for `items`, which must all be images (docker's manifest.json lists images only). */
export async function dockerArchiveEntries(items: readonly WriteItem[], signal?: AbortSignal): Promise<{ entries: ArchiveEntry[]; digests: WriteResult["digests"] }> {
  const index = items.find((i) => i.doc.kind === "index");
  if (index) {
    throw new UnsupportedError(`a docker-archive holds single-platform images, and ${index.repoTags[0] ?? "the image"} is an index of ${index.doc.kind === "index" ? index.doc.manifests.length : 0}; choose one platform with --platform, or write to oci: or oci-archive: to keep the index`);
  }
  const plan = await planLayout(items, signal ? { signal } : {});
  const images = plan.items.map((p) => ({ image: p.doc as Image, tags: p.tags }));
  const entries = layoutEntries(plan);
  entries.push({ name: DOCKER_MANIFEST, bytes: dockerManifest(images) }, { name: LEGACY_REPOSITORIES, bytes: repositories(images) });
  return { entries, digests: plan.items.map((p) => p.doc.digest) };
}

/**
 * Writes the archive of `items` to `dest` (replaced atomically), or to the output stream for `-`.
 * Throws UnsupportedError for an index.
 */
export async function writeDockerArchive(dest: string, items: readonly WriteItem[], opts: ArchiveWriteOptions = {}): Promise<WriteResult> {
  const { entries, digests } = await dockerArchiveEntries(items, opts.signal);
  const bytes = await writeTarTo(dest, entries, opts);
  return { digests, bytes };
}
