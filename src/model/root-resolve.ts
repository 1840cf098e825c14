import { UnsafePathError } from "./errors.js";
import { joinPath, parentPath } from "./image-path.js";

/**
 * Following links inside a root without ever leaving it, written once.
 *
 * Three places need it: the merged tree of an image's layers (where does a file laid at
 * `lib/foo` land when `lib -> usr/lib`?), a staging directory on the host (the same
 * question, asked of a real file system), and an indexed image archive (skopeo writes
 * `ID/layer.tar -> ../HEX.tar`). They used to carry their own copies, which drifted in
 * their hop limits and loop errors. Here the walk is one function over a `RootView`, and
 * the differences between the three are spelled out in `FollowRules`.
 *
 * It is pure and synchronous: the merged tree asks it once per source path of a build,
 * and promises there would cost more than the lookups themselves.
 */

/** What a view knows of one path: enough to decide whether and where to follow it. */
export interface RootEntry {
  /** "other" is anything that is neither a directory nor a link to follow (a file, a device...). */
  kind: "dir" | "symlink" | "hardlink" | "other";
  /** A symlink's target as written (relative to its directory, or absolute); a hard link's path from the root. */
  target?: string;
}

/** A root file system seen through canonical paths (see image-path.ts). */
export interface RootView {
  /** Names the root in error messages: `the base image`, an archive's path. */
  readonly name: string;
  /** What is at canonical path `path`, or undefined when nothing is. The root "" is never asked. */
  lookup(path: string): RootEntry | undefined;
}

/** How a lookup treats links; each user of the resolver picks the rules of its world. */
export interface FollowRules {
  /**
   * Whether a link in the last component is followed (as stat() does) or the caller means
   * that name itself (as lstat() does). Links in the components before it are always followed.
   */
  followLast: boolean;
  /**
   * "dirs": a link is followed only when it leads to a directory, and otherwise stays in the
   * path as written: that is where a file laid under it lands, and a link to a file or a
   * dangling one is then replaced. "all": every link is followed, to files and to nowhere,
   * as open() does; a dangling link resolves to the missing path it names.
   */
  follow: "dirs" | "all";
  /**
   * "clamp": the root is a chroot: `..` at the root stays there and an absolute target starts
   * at the root, so no lookup can leave it. "refuse": the root is an archive whose links must
   * stay inside it: a `..` that climbs above the root, or an absolute target, is an UnsafePathError.
   */
  confine: "clamp" | "refuse";
}

/** Linux gives up after 40 links in one lookup (MAXSYMLINKS); so does gantry, everywhere. */
export const MAX_LINK_HOPS = 40;

/** A link being followed, named in the error when its target climbs out of the root. */
interface Link {
  path: string;
  target: string;
}

/** One lookup in progress: the hop budget is shared by the links followed within links. */
interface Lookup {
  readonly view: RootView;
  readonly rules: FollowRules;
  readonly asked: string;
  hops: number;
}

/**
 * The canonical path `path` leads to inside `view`'s root, links followed by `rules`
 * ("" is the root). `path` is relative to the root (a leading `/` changes nothing).
 * When the last component is `.` or `..`, or the path ends with `/`, there is no name to
 * keep as written, and the whole path is followed whatever `followLast` says (as on Linux).
 * @throws UnsafePathError after more than MAX_LINK_HOPS links in one lookup (a loop, most
 * likely), or, under `confine: "refuse"`, when a link or the path itself leaves the root.
 */
export function resolveLinks(view: RootView, path: string, rules: FollowRules): string {
  const lookup: Lookup = { view, rules, asked: path, hops: 0 };
  const parts = path.split("/");
  const last = parts[parts.length - 1] ?? "";
  const keepLast = !rules.followLast && last !== "" && last !== "." && last !== "..";
  if (keepLast) parts.pop();
  const dir = walk(lookup, "", parts, undefined);
  const resolved = keepLast ? joinPath(dir, last) : dir;
  // The path asked, when nothing rerouted it: each entry of a new layer keeps its resolved
  // path, and a string of its own per file, equal to the walk's, was 3 MB of 100,000 files.
  return resolved === path ? path : resolved;
}

/**
 * Walks `parts` from canonical path `from`, following links as it goes, and returns where
 * it ends. `via` is the link whose target is being walked (undefined for the path asked).
 */
function walk(lookup: Lookup, from: string, parts: readonly string[], via: Link | undefined): string {
  const { view, rules } = lookup;
  let at = from;
  for (const part of parts) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (at !== "") at = parentPath(at);
      else if (rules.confine === "refuse") throw climbsOut(lookup, via);
      continue;
    }
    at = joinPath(at, part);
    const entry = view.lookup(at);
    if (entry === undefined || entry.kind === "dir" || entry.kind === "other") continue;
    // Linux answers ENOENT for an empty target: there is nowhere to follow it to.
    if (entry.target === undefined || entry.target === "") continue;
    if (++lookup.hops > MAX_LINK_HOPS) throw tooManyLinks(lookup);
    const link: Link = { path: at, target: entry.target };
    const absolute = link.target.startsWith("/");
    if (absolute && rules.confine === "refuse") throw absoluteLink(lookup, link);
    // A symlink is relative to its own directory; a hard link names a path from the root.
    const start = absolute || entry.kind === "hardlink" ? "" : parentPath(at);
    const landed = walk(lookup, start, link.target.split("/"), link);
    if (rules.follow === "all" || landed === "" || view.lookup(landed)?.kind === "dir") at = landed;
  }
  return at;
}

function tooManyLinks(lookup: Lookup): UnsafePathError {
  return new UnsafePathError(`the path ${JSON.stringify(lookup.asked)} in ${lookup.view.name} goes through more than ${MAX_LINK_HOPS} links (a loop?); fix the links`);
}

function climbsOut(lookup: Lookup, via: Link | undefined): UnsafePathError {
  const how = via === undefined
    ? "climbs above the root with \"..\""
    : `goes through the link ${JSON.stringify(via.path)} to ${JSON.stringify(via.target)}, which climbs above the root`;
  return new UnsafePathError(`the path ${JSON.stringify(lookup.asked)} in ${lookup.view.name} ${how}; links must stay inside it`);
}

function absoluteLink(lookup: Lookup, link: Link): UnsafePathError {
  return new UnsafePathError(`the path ${JSON.stringify(lookup.asked)} in ${lookup.view.name} goes through the link ${JSON.stringify(link.path)} to the absolute path ${JSON.stringify(link.target)}; links must stay inside it`);
}
