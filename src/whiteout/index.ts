import { UnsafePathError } from "../model/errors.js";
import { baseName, cleanPath, joinPath, parentPath } from "../model/image-path.js";

/**
 * Whiteouts: how a layer says "delete this from the layers below", in the one spelling
 * the OCI image spec and Docker share (AUFS-style names, not overlayfs xattrs).
 *
 * - `DIR/.wh.NAME` deletes DIR/NAME, and everything below it, from LOWER layers only:
 *   an entry of the same layer at that path survives.
 * - `DIR/.wh..wh..opq` (the opaque marker) hides every lower child of DIR. It applies
 *   before the layer's own entries whatever their order in the tar, so children the same
 *   layer adds to DIR survive.
 * - Whiteouts are instructions, never files: a merged tree or an exported root holds none.
 *
 * Readers (merged tree, flattener) call `classifyEntry`; writers (layer differ) call
 * `whiteoutPathFor` / `opaqueMarkerPathFor`. No other module spells these names.
 */

/** The prefix of a whiteout's name: `.wh.NAME` deletes NAME from lower layers. */
export const WHITEOUT_PREFIX = ".wh.";
/** The opaque marker's name: in a directory, it hides every child of that directory in lower layers. */
export const OPAQUE_MARKER = ".wh..wh..opq";
/** Names AUFS kept for its own bookkeeping (`.wh..wh.plnk`, `.wh..wh.aufs`); readers skip them. */
export const WHITEOUT_META_PREFIX = ".wh..wh.";

/** What classifyEntry says an entry is; its paths are canonical, "" being the root. */
export type ClassifiedEntry =
  /** An ordinary entry at `path`. */
  | { kind: "plain"; path: string }
  /** A whiteout: `deleted` (and all below it) is removed from lower layers. */
  | { kind: "whiteout"; deleted: string }
  /** An opaque marker: every lower child of `dir` is hidden. */
  | { kind: "opaque"; dir: string }
  /** AUFS bookkeeping (`.wh..wh.*` other than the opaque marker): carries no file, skip it. */
  | { kind: "meta"; path: string };

/** Whether a single file name is reserved for whiteouts (sources may not contain such names). */
export function isWhiteoutName(name: string): boolean {
  return name.startsWith(WHITEOUT_PREFIX);
}

/**
 * Says what a layer entry means. `rawPath` is the entry's name as found in the tar;
 * it is cleaned here (see `cleanPath`), so callers need not clean it first.
 * @throws UnsafePathError when the path escapes the root, or a whiteout names "", "." or "..".
 */
export function classifyEntry(rawPath: string, what = "a layer entry"): ClassifiedEntry {
  const path = cleanPath(rawPath, what);
  const name = baseName(path);
  if (!isWhiteoutName(name)) return { kind: "plain", path };
  const dir = parentPath(path);
  if (name === OPAQUE_MARKER) return { kind: "opaque", dir };
  if (name.startsWith(WHITEOUT_META_PREFIX)) return { kind: "meta", path };
  const target = name.slice(WHITEOUT_PREFIX.length);
  if (target === "" || target === "." || target === "..") {
    throw new UnsafePathError(`${what} ${JSON.stringify(rawPath)} is a whiteout of ${JSON.stringify(target)}, which names no file below its directory; the layer is malformed`);
  }
  return { kind: "whiteout", deleted: joinPath(dir, target) };
}

/** The entry path that deletes `deleted` (a canonical, non-root path) from lower layers. */
export function whiteoutPathFor(deleted: string): string {
  if (deleted === "") throw new UnsafePathError("the image root cannot be whited out; delete its children instead");
  return joinPath(parentPath(deleted), WHITEOUT_PREFIX + baseName(deleted));
}

/** The entry path of the opaque marker that hides every lower child of `dir` (canonical; "" is the root). */
export function opaqueMarkerPathFor(dir: string): string {
  return joinPath(dir, OPAQUE_MARKER);
}
