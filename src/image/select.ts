import { FormatError, ImageNotFoundError, InvalidReferenceError } from "../model/errors.js";
import type { Image, ImageIndex, ImageOrIndex } from "../model/image.js";
import type { Descriptor, Platform } from "../model/oci.js";
import { formatPlatform, hostPlatform, parsePlatform, platformMatches } from "../model/platform.js";

/**
 * Choosing one image of an index by platform, the same way for every transport: the
 * children whose platform matches (variant compared only when both name one); failing
 * that, a child with no platform at all when it is the only such child (go-containerregistry's
 * test indexes have them, and skopeo takes them). Nested indexes are followed.
 */

/** Real indexes nest once (an index of per-platform indexes is rare); deeper is malformed. */
const MAX_INDEX_DEPTH = 4;

/** `os/arch[/variant]` as `--platform` takes it; the host's platform when absent. */
export function wantedPlatform(spelled: string | undefined): Platform {
  if (spelled === undefined) return hostPlatform();
  const parsed = parsePlatform(spelled);
  if (!parsed) throw new InvalidReferenceError(`the platform "${spelled}" is invalid: write it as OS/ARCH[/VARIANT], e.g. linux/arm64`);
  return parsed;
}

/** How an index entry is shown: its platform, or what it is when it has none. */
export function describeEntry(desc: Descriptor): string {
  return desc.platform ? formatPlatform(desc.platform) : `an entry with no platform (${desc.digest.slice(0, 19)})`;
}

/** The child of `index` for `want`, or undefined when there is none. */
export function choosePlatform(index: ImageIndex, want: Platform): Descriptor | undefined {
  const matching = index.manifests.find((d) => platformMatches(d.platform, want));
  if (matching) return matching;
  const unlabelled = index.manifests.filter((d) => d.platform === undefined);
  return unlabelled.length === 1 ? unlabelled[0] : undefined;
}

/**
 * The image `doc` is for `want`: itself when it is an image, else the matching child of the
 * index (followed through nested indexes). `what` names the source in errors.
 */
export async function imageForPlatform(doc: ImageOrIndex, want: Platform, what: string, signal?: AbortSignal): Promise<Image> {
  let current = doc;
  for (let depth = 0; current.kind === "index"; depth++) {
    if (depth >= MAX_INDEX_DEPTH) throw new FormatError(`the image indexes of ${what} nest deeper than ${MAX_INDEX_DEPTH}; the index is malformed`);
    const chosen = choosePlatform(current, want);
    if (chosen === undefined) {
      const offered = current.manifests.map(describeEntry).join(", ") || "nothing";
      throw new ImageNotFoundError(`${what} has no image for ${formatPlatform(want)}; it has: ${offered} (choose one with --platform)`);
    }
    current = await current.child(chosen, signal);
  }
  return current;
}
