import type { Digest } from "../model/digest.js";
import type { Image } from "../model/image.js";
import type { ImageConfigJson, ManifestJson } from "../model/oci.js";
import { imageManifest } from "../image/manifest.js";
import { readImage } from "../transports/read.js";
import { registryOptionsFrom, type RegistryAccess } from "../transports/docker/options.js";
// Installs the docker:// reader.
import "../transports/docker/register.js";

export interface InspectOptions extends RegistryAccess {
  /** Any readable reference (SPEC "Image references"). */
  ref: string;
  /** NAME[:TAG] of one image in a multi-image source. */
  pick?: string;
  /** `os/arch[/variant]` of a multi-platform source; the host's by default. */
  platform?: string;
}

export interface InspectedLayer { digest: Digest; diffId: Digest; size: number; mediaType: string }

export interface InspectResult {
  repoTags: string[];
  manifestDigest: Digest;
  manifest: ManifestJson;
  manifestBytes: Buffer;
  configDigest: Digest;
  config: ImageConfigJson;
  configBytes: Buffer;
  created: string | undefined;
  architecture: string;
  os: string;
  variant: string | undefined;
  layers: InspectedLayer[];
  image: Image;
}

/** Reads an image's manifest and config (no layer is read). */
export async function inspectImage(opts: InspectOptions): Promise<InspectResult> {
  const readOpts: Parameters<typeof readImage>[1] = {};
  if (opts.signal) readOpts.signal = opts.signal;
  if (opts.pick !== undefined) readOpts.pick = opts.pick;
  if (opts.platform !== undefined) readOpts.platform = opts.platform;
  readOpts.registry = registryOptionsFrom(opts);
  const image = await readImage(opts.ref, readOpts);
  const manifest = imageManifest(image, "oci");
  return {
    repoTags: [...image.repoTags],
    manifestDigest: manifest.digest,
    manifest: manifest.json,
    manifestBytes: manifest.bytes,
    configDigest: image.configDigest,
    config: image.config,
    configBytes: image.configBytes,
    created: image.config.created,
    architecture: image.config.architecture,
    os: image.config.os,
    variant: image.config.variant,
    layers: image.layers.map((l, i) => ({
      digest: l.digest, diffId: l.diffId, size: l.size,
      mediaType: manifest.json.layers[i]?.mediaType ?? "",
    })),
    image,
  };
}
