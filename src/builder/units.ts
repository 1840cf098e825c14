import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import type { SourceTree } from "../layer/sources.js";
import { cleanPath } from "../model/image-path.js";

/**
 * Units: the pieces of a layer's content that change together, found in the tree itself so
 * that `maxLayers` can give each its own layer bin and a change to one touches one layer.
 *
 * - `…/node_modules/<pkg>` and `…/node_modules/@scope/<pkg>` (the first node_modules on the
 *   path: a package's own nested node_modules change with it);
 * - Python's `…/site-packages/<name>` (and dist-packages): a package directory, a module
 *   file, and its `<name>-<version>.dist-info` / `.data` are one unit, by name;
 * - dpkg packages: the files each `var/lib/dpkg/info/<pkg>.list` names;
 * - otherwise the top-level entries of the tree.
 * Directories themselves belong to no unit: every layer restates the ones it needs.
 */

/** A piece of a tree that changes as one (a package, a top-level entry), never split across layers. */
export interface Unit {
  /** Stable across builds: what the unit is (a path-like name), never a size or an order. */
  readonly name: string;
  /** Bytes of its regular files. */
  size: number;
  /** Image paths of its non-directory entries. */
  readonly paths: string[];
}

const PYTHON_DIRS = new Set(["site-packages", "dist-packages"]);

/** The unit a path belongs to by its own spelling (node_modules, site-packages), if any. */
function namedUnit(parts: readonly string[]): string | undefined {
  for (let i = 0; i < parts.length - 1; i++) {
    const part = parts[i]!;
    if (part === "node_modules") {
      const first = parts[i + 1]!;
      const scoped = first.startsWith("@") && i + 2 < parts.length;
      return parts.slice(0, scoped ? i + 3 : i + 2).join("/");
    }
    if (PYTHON_DIRS.has(part)) {
      // foo/, foo.py, foo-1.2.dist-info/, foo-1.2.data/, foo.cpython-311-x86_64-linux-gnu.so: all "foo".
      const entry = parts[i + 1]!;
      const name = entry.replace(/(-[^-]*)?\.(dist-info|data|egg-info)$/, "").split(".")[0]!.toLowerCase().replace(/-/g, "_");
      return [...parts.slice(0, i + 1), name].join("/");
    }
  }
  return undefined;
}

/** dpkg's own account of which package owns which file, when the tree holds a dpkg database. */
function dpkgOwners(tree: SourceTree): Map<string, string> {
  const owners = new Map<string, string>();
  for (const path of tree.childrenOf("var/lib/dpkg/info")) {
    const node = tree.get(path);
    if (!path.endsWith(".list") || node?.type !== "file" || node.hostPath === undefined) continue;
    const pkg = path.slice(path.lastIndexOf("/") + 1, -".list".length);
    let listed: string;
    try {
      listed = readFileSync(node.hostPath, "utf8");
    } catch {
      continue; // an unreadable list only costs this package its own unit
    }
    for (const line of listed.split("\n")) {
      if (line === "" || line === "/.") continue;
      try {
        owners.set(cleanPath(line), `dpkg:${pkg}`);
      } catch {
        // a line that is no path inside the image owns nothing
      }
    }
    owners.set(path, `dpkg:${pkg}`);
  }
  return owners;
}

/** Every non-directory entry of the tree, grouped into units, in name order. */
export function findUnits(tree: SourceTree): Unit[] {
  const owners = dpkgOwners(tree);
  const units = new Map<string, Unit>();
  for (const [path, node] of tree.entries()) {
    if (node.type === "dir") continue;
    // Hard links stay with the file they link to: a layer cannot link into another.
    const owner = node.hardlinkGroup ?? path;
    const parts = owner.split("/");
    const name = namedUnit(parts) ?? owners.get(owner) ?? parts[0]!;
    let unit = units.get(name);
    if (!unit) units.set(name, (unit = { name, size: 0, paths: [] }));
    unit.paths.push(path);
    if (node.type === "file") unit.size += node.size;
  }
  return [...units.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** A number from a unit's name alone, the same on every machine and in every build. */
function stableHash(name: string): number {
  return createHash("sha256").update(name).digest().readUInt32BE(0);
}

/**
 * Puts units into at most `bins` layers so that a change to one unit changes one layer:
 *
 * 1. A unit larger than an even share (total / bins) gets a layer of its own; such layers
 *    come first, largest first (ties by name). There are at most bins − 1 of them.
 * 2. Every other unit goes to bin `hash(name) mod (bins left)`.
 *
 * Where a unit goes depends on its name and on which units are large, never on the order
 * of the others or their exact sizes: upgrading a package changes its own layer, and moves
 * others only when it crosses the even share. Large units on their own keep one package's
 * upgrade from sending an average-sized layer plus a large neighbour. Returns the non-empty
 * bins, each a list of units in name order.
 */
export function assignBins(units: readonly Unit[], bins: number): Unit[][] {
  if (bins <= 1 || units.length <= 1) return units.length === 0 ? [] : [[...units]];
  const total = units.reduce((n, u) => n + u.size, 0);
  const share = total / bins;
  const large = units.filter((u) => u.size > share)
    .sort((a, b) => b.size - a.size || (a.name < b.name ? -1 : 1))
    .slice(0, bins - 1);
  const rest = units.filter((u) => !large.includes(u)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const hashed = bins - large.length;
  const buckets: Unit[][] = Array.from({ length: hashed }, () => []);
  for (const unit of rest) buckets[stableHash(unit.name) % hashed]!.push(unit);
  return [...large.map((u) => [u]), ...buckets].filter((b) => b.length > 0);
}
