import { ancestorsOf, isAtOrBelow } from "../model/image-path.js";

/**
 * Which paths are symbolic links at each point of applying the layers in tar order, so
 * that an entry reaching through one (`link -> /etc` then `link/passwd`, in the same layer
 * or a higher one) is caught. The merged tree does not follow such links (it puts a
 * directory in the link's place), but a runtime extracting the layer would, so an image
 * that relies on it is refused rather than flattened into something else.
 *
 * It follows the merged tree's rules: a non-directory replaces whatever was at its path
 * and below; a whiteout or opaque marker of layer k removes only what lower layers laid.
 */
export class SymlinkGuard {
  /** Path of each symlink currently laid → the layer that laid it. */
  private readonly links = new Map<string, number>();
  /** Directory → how many tracked symlinks lie below it, so most removals skip the scan. */
  private readonly below = new Map<string, number>();

  /** The nearest tracked symlink among the proper ancestors of `path`, if there is one. */
  linkAbove(path: string): string | undefined {
    if (this.links.size === 0) return undefined;
    const ancestors = ancestorsOf(path);
    for (let i = ancestors.length - 1; i >= 0; i--) {
      const a = ancestors[i] as string;
      if (this.links.has(a)) return a;
    }
    return undefined;
  }

  /** Records a plain entry of `layer` at `path`. */
  laid(path: string, isDir: boolean, isSymlink: boolean, layer: number): void {
    if (isDir) this.remove(path);
    else this.removeAtOrBelow(path, Infinity);
    if (isSymlink) this.add(path, layer);
  }

  /** A whiteout of `layer` removes what lower layers laid at and below `path`. */
  whiteout(path: string, layer: number): void {
    this.removeAtOrBelow(path, layer);
  }

  /** An opaque marker of `layer` removes what lower layers laid below `dir`. */
  opaque(dir: string, layer: number): void {
    this.removeAtOrBelow(dir, layer, false);
  }

  private add(path: string, layer: number): void {
    this.links.set(path, layer);
    for (const a of ["", ...ancestorsOf(path)]) this.below.set(a, (this.below.get(a) ?? 0) + 1);
  }

  private remove(path: string): void {
    if (!this.links.delete(path)) return;
    for (const a of ["", ...ancestorsOf(path)]) {
      const n = (this.below.get(a) ?? 0) - 1;
      if (n > 0) this.below.set(a, n);
      else this.below.delete(a);
    }
  }

  /** Removes tracked links at (if `self`) and below `path` that a layer lower than `layer` laid. */
  private removeAtOrBelow(path: string, layer: number, self = true): void {
    const at = this.links.get(path);
    if (self && at !== undefined && at < layer) this.remove(path);
    if (!this.below.has(path)) return;
    for (const [p, l] of [...this.links]) {
      if (p !== path && isAtOrBelow(p, path) && l < layer) this.remove(p);
    }
  }
}
