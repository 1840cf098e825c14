import type { Layer } from "../../model/image.js";

/**
 * Where blobs are known to live, so a push can mount them from a sibling repository
 * instead of uploading them again. This is an addition to `Layer`, carried by the layers
 * a registry read makes; everything else ignores it.
 */
export interface BlobLocation {
  readonly registry: string;
  readonly repository: string;
}

/** A layer read from a registry carries the repository it came from. */
export interface LocatedLayer extends Layer {
  readonly location: BlobLocation;
}

/** Layers pushed in this process, by object: a second push to a sibling repository mounts them. */
const pushedTo = new WeakMap<Layer, BlobLocation[]>();

/** Records that `layer`'s blob is now in `location` (it was pushed there), for later pushes of this process. */
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
