import type { Digest } from "../../model/digest.js";
import type { Image, Layer } from "../../model/image.js";
import type { RegistryReference } from "./reference.js";

/**
 * Where blobs are known to live, so a push can mount them from a sibling repository
 * instead of uploading them again. These are additions to `Image` and `Layer`, carried by
 * the objects a registry read makes; everything else ignores them.
 */
export interface BlobLocation {
  readonly registry: string;
  readonly repository: string;
}

/** A layer read from a registry carries the repository it came from. */
export interface LocatedLayer extends Layer {
  readonly location: BlobLocation;
}

/** What a registry read knew about the image: the exact manifest, so a copy keeps its digest. */
export interface RegistryImageSource {
  readonly reference: RegistryReference;
  readonly manifestDigest: Digest;
  readonly manifestMediaType: string;
  readonly manifestBytes: Buffer;
}

export interface RegistryImage extends Image {
  readonly registrySource: RegistryImageSource;
}

export function registrySourceOf(image: Image): RegistryImageSource | undefined {
  return (image as Partial<RegistryImage>).registrySource;
}

/** Layers pushed in this process, by object: a second push to a sibling repository mounts them. */
const pushedTo = new WeakMap<Layer, BlobLocation[]>();

export function rememberLocation(layer: Layer, location: BlobLocation): void {
  const known = pushedTo.get(layer) ?? [];
  if (!known.some((l) => sameLocation(l, location))) pushedTo.set(layer, [...known, location]);
}

/** Every repository this layer's blob is known to be in, its origin first. */
export function locationsOf(layer: Layer): BlobLocation[] {
  const origin = (layer as Partial<LocatedLayer>).location;
  return [...(origin ? [origin] : []), ...(pushedTo.get(layer) ?? [])];
}

function sameLocation(a: BlobLocation, b: BlobLocation): boolean {
  return a.registry === b.registry && a.repository === b.repository;
}
