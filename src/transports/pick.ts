import { FormatError, ImageNotFoundError, InvalidReferenceError } from "../model/errors.js";
import { matchesRepoTag } from "./image-name.js";

/** One image a multi-image source holds, as the picker sees it. */
export interface Candidate {
  readonly repoTags: readonly string[];
  /** How to name the image in a message when it has no tags (e.g. its config file). */
  readonly untaggedLabel: string;
}

/** Lists what a source holds, for "not found" and "which one?" messages. */
export function describeCandidates(candidates: readonly Candidate[]): string {
  return candidates.map((c) => (c.repoTags.length > 0 ? c.repoTags.join(", ") : `an untagged image (${c.untaggedLabel})`)).join("; ");
}

/**
 * Picks one image by `NAME[:TAG]` (a `docker.io/library/`, `docker.io/` or `localhost/`
 * prefix ignored, a missing tag meaning `latest`). With no name: the only image, or, when
 * there are several, an error listing them unless `firstOfMany` (a build's base, as nixpkgs
 * takes the first).
 */
export function pickCandidate<T extends Candidate>(
  candidates: readonly T[], wanted: string | undefined, source: string, firstOfMany = false,
): T {
  const first = candidates[0];
  if (first === undefined) throw new FormatError(`${source} holds no image`);
  if (wanted === undefined) {
    if (candidates.length > 1 && !firstOfMany) {
      throw new InvalidReferenceError(`${source} holds ${candidates.length} images and the reference names none; add :NAME:TAG to choose one of: ${describeCandidates(candidates)}`);
    }
    return first;
  }
  const found = candidates.find((c) => matchesRepoTag(c.repoTags, wanted));
  if (!found) {
    const asked = wanted.startsWith(":") ? `tagged "${wanted.slice(1)}"` : `named "${wanted}"`;
    throw new ImageNotFoundError(`${source} holds no image ${asked}; it holds: ${describeCandidates(candidates)}`);
  }
  return found;
}
