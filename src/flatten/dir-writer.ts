import { closeSync, constants, createReadStream, fchmodSync, fchownSync, futimesSync, lstatSync, openSync } from "node:fs";
import { chmod, chown, lchown, link, lstat, lutimes, mkdir, open, symlink, utimes } from "node:fs/promises";
import { join } from "node:path";
import type { Digest } from "../model/digest.js";
import { GantryError, UnsafePathError, ioError, throwIfAborted } from "../model/errors.js";
import { ancestorsOf, comparePaths } from "../model/image-path.js";
import type { FileTree, TreeNode } from "../layer/tree.js";
import type { LinkPlan } from "./hardlinks.js";
import { writeHashed, type FileContentSink } from "./layer-files.js";
import { makeSpecialFile } from "./special-files.js";

const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const REWRITE_FLAGS = constants.O_WRONLY | constants.O_TRUNC | constants.O_NOFOLLOW;

/**
 * Lays a flattened root file system into a directory it owns (`root`, empty at first)
 * without ever following a symlink: directories are made first, from the tree; files are
 * created with O_EXCL|O_NOFOLLOW under parents checked with lstat; symlinks, hardlinks and
 * special files come last, so nothing is ever written through one. Owners are set only
 * when running as root; device nodes need root too and are skipped otherwise (FIFOs are not).
 */
export class DirectoryWriter implements FileContentSink {
  private readonly realDirs = new Set<string>([""]);
  /** Device nodes left out because only root can make them. */
  readonly skippedDevices: string[] = [];

  constructor(
    private readonly root: string,
    private readonly asRoot = process.getuid?.() === 0,
  ) {}

  /** Makes every directory of `tree`, parents first; their attributes are set by `finish`. */
  async makeDirectories(tree: FileTree, signal?: AbortSignal): Promise<void> {
    for (const [path, node] of tree.entries()) {
      if (node.type !== "dir") continue;
      throwIfAborted(signal);
      await this.checkParents(path);
      const host = this.hostPath(path);
      try {
        await mkdir(host, 0o700);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST" || !(await lstat(host)).isDirectory()) throw this.failed(path, err);
      }
      this.realDirs.add(path);
    }
  }

  async file(path: string, node: TreeNode, content: AsyncIterable<Buffer>): Promise<Digest> {
    await this.checkParents(path);
    const host = this.hostPath(path);
    // Synchronous calls for the same reason as writeHashed: per file, open, chown, chmod,
    // utimes and close are each cheaper than a thread-pool round trip.
    let fd: number;
    try {
      fd = openSync(host, CREATE_FLAGS, 0o600);
    } catch (err) {
      // The same path twice in one layer: the later entry wins, as in the merged tree.
      if ((err as NodeJS.ErrnoException).code !== "EEXIST" || !lstatSync(host).isFile()) throw this.failed(path, err);
      try {
        fd = openSync(host, REWRITE_FLAGS);
      } catch (e) {
        throw this.failed(path, e);
      }
    }
    try {
      const digest = await writeHashed(fd, content);
      // Owner first: chown clears the setuid and setgid bits that chmod then sets.
      if (this.asRoot) fchownSync(fd, node.uid, node.gid);
      fchmodSync(fd, node.mode);
      futimesSync(fd, node.mtime, node.mtime);
      return digest;
    } catch (err) {
      throw err instanceof GantryError ? err : this.failed(path, err);
    } finally {
      closeSync(fd);
    }
  }

  async copy(from: string, path: string, node: TreeNode): Promise<Digest> {
    const src = await open(this.hostPath(from), constants.O_RDONLY | constants.O_NOFOLLOW).catch((e: unknown) => { throw this.failed(from, e); });
    return this.file(path, node, createReadStream("", { fd: src, autoClose: true }));
  }

  /**
   * Adds what is not a file or directory (symlinks, hardlinks, special files), then sets
   * every directory's mode, owner and time, deepest first, so that neither a read-only
   * directory nor a new child disturbs them.
   */
  async finish(tree: FileTree, links: LinkPlan, signal?: AbortSignal): Promise<void> {
    for (const group of links.groups) {
      for (const member of group.members) {
        if (member === group.holder) continue;
        throwIfAborted(signal);
        await this.checkParents(member);
        const holder = this.hostPath(group.holder);
        if (!(await lstat(holder)).isFile()) throw new UnsafePathError(`the hardlink ${member} would point at ${group.holder}, which is not a regular file of the exported tree`);
        await link(holder, this.hostPath(member)).catch((e: unknown) => { throw this.failed(member, e); });
      }
    }
    for (const [path, node] of tree.entries()) {
      if (node.type === "symlink") {
        throwIfAborted(signal);
        await this.checkParents(path);
        const host = this.hostPath(path);
        try {
          await symlink(node.linkname ?? "", host);
          if (this.asRoot) await lchown(host, node.uid, node.gid);
          await lutimes(host, node.mtime, node.mtime);
        } catch (err) {
          throw this.failed(path, err);
        }
      } else if (node.type === "char" || node.type === "block" || node.type === "fifo") {
        throwIfAborted(signal);
        if (node.type !== "fifo" && !this.asRoot) {
          this.skippedDevices.push(path);
          continue;
        }
        await this.checkParents(path);
        const host = this.hostPath(path);
        await makeSpecialFile(host, node.type, node.devmajor, node.devminor);
        await this.setAttributes(path, host, node);
      }
    }
    const dirs = tree.paths().filter((p) => tree.get(p)?.type === "dir").sort((a, b) => comparePaths(b, a));
    for (const path of dirs) {
      await this.setAttributes(path, this.hostPath(path), tree.get(path) as TreeNode);
    }
    // An image says nothing of its root directory; runtimes and umoci make it 0755.
    await chmod(this.root, 0o755).catch((e: unknown) => { throw this.failed("", e); });
  }

  /** Owner (as root), mode and mtime of a node, set after its content so nothing resets them. */
  private async setAttributes(path: string, host: string, node: TreeNode): Promise<void> {
    try {
      if (this.asRoot) await chown(host, node.uid, node.gid);
      await chmod(host, node.mode);
      await utimes(host, node.mtime, node.mtime);
    } catch (err) {
      throw this.failed(path, err);
    }
  }

  private hostPath(path: string): string {
    return path === "" ? this.root : join(this.root, path);
  }

  /** Every ancestor of `path` must be a real directory (never a symlink) made by this writer. */
  private async checkParents(path: string): Promise<void> {
    for (const dir of ancestorsOf(path)) {
      if (this.realDirs.has(dir)) continue;
      const st = await lstat(this.hostPath(dir)).catch(() => undefined);
      if (!st?.isDirectory()) {
        throw new UnsafePathError(`the exported path ${JSON.stringify(path)} lies under ${JSON.stringify(dir)}, which is not a directory of the exported tree; refusing to write through it`);
      }
      this.realDirs.add(dir);
    }
  }

  private failed(path: string, err: unknown): GantryError {
    return ioError(`the exported file ${this.hostPath(path)}`, err);
  }
}
