import type { Digest } from "../model/digest.js";
import type { Image, ImageIndex } from "../model/image.js";
import type { ImageConfigJson, ManifestJson } from "../model/oci.js";
import { formatPlatform } from "../model/platform.js";
import { imageForPlatform, wantedPlatform } from "../image/select.js";
import type { AccessOptions } from "../transports/transport.js";
import { readSource } from "./source.js";

/** What `inspectImage` reads: one reference, and which image of it. */
export interface InspectOptions extends AccessOptions {
  /** Any readable reference (SPEC "Image references"). */
  ref: string;
  /** NAME[:TAG] of one image in a multi-image source. */
  pick?: string;
  /**
   * `os/arch[/variant]`: one image of an index. Without it an index is described as an
   * index (its platforms), unless `resolveIndex` asks for the host's image.
   */
  platform?: string;
  /** Describe an index's image for the platform (the host's by default) rather than the index. */
  resolveIndex?: boolean;
}

/** One layer of an inspected image: its blob's digest, size in bytes and media type, and the diff_id of its uncompressed tar. */
export interface InspectedLayer { digest: Digest; diffId: Digest; size: number; mediaType: string }

/** What `inspect` says of one image. Digests and bytes are the source's own. */
export interface InspectedImage {
  kind: "image";
  repoTags: string[];
  /** The digest of `manifestBytes`: what the source serves and `@sha256:` pins. */
  manifestDigest: Digest;
  mediaType: string;
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

/** One image an inspected index offers, as its descriptor names it. */
export interface InspectedIndexEntry {
  digest: Digest;
  mediaType: string;
  size: number;
  /** `os/arch[/variant]`, or undefined for an entry that names no platform. */
  platform: string | undefined;
}

/** What `inspect` says of an index: its digest and the images it offers. */
export interface InspectedIndex {
  kind: "index";
  repoTags: string[];
  manifestDigest: Digest;
  mediaType: string;
  manifestBytes: Buffer;
  manifests: InspectedIndexEntry[];
  index: ImageIndex;
}

/** An image's manifest and config, or an index's list of images by platform. */
export type InspectResult = InspectedImage | InspectedIndex;

/** Reads a reference's manifest and config (no layer is read). */
export async function inspectImage(opts: InspectOptions): Promise<InspectResult> {
  const want = opts.platform !== undefined || opts.resolveIndex ? wantedPlatform(opts.platform) : undefined;
  const { ref, doc } = await readSource(opts.ref, opts);
  if (doc.kind === "index" && want === undefined) return describeIndex(doc);
  return describeImage(want === undefined ? doc as Image : await imageForPlatform(doc, want, ref.toString(), opts.signal));
}

function describeIndex(index: ImageIndex): InspectedIndex {
  return {
    kind: "index",
    repoTags: [...index.repoTags],
    manifestDigest: index.digest,
    mediaType: index.mediaType,
    manifestBytes: index.manifestBytes,
    manifests: index.manifests.map((d) => ({
      digest: d.digest, mediaType: d.mediaType, size: d.size, platform: d.platform ? formatPlatform(d.platform) : undefined,
    })),
    index,
  };
}

function describeImage(image: Image): InspectedImage {
  return {
    kind: "image",
    repoTags: [...image.repoTags],
    manifestDigest: image.digest,
    mediaType: image.mediaType,
    manifest: image.manifest,
    manifestBytes: image.manifestBytes,
    configDigest: image.configDigest,
    config: image.config,
    configBytes: image.configBytes,
    created: image.config.created,
    architecture: image.config.architecture,
    os: image.config.os,
    variant: image.config.variant,
    layers: image.layers.map((l) => ({ digest: l.digest, diffId: l.diffId, size: l.size, mediaType: l.mediaType })),
    image,
  };
}
