import { createHash, randomBytes } from "node:crypto";
import { chmod, lstat, mkdir, readFile, readdir, readlink, rename, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ioError } from "../model/errors.js";

/**
 * Files that gantry makes rather than copies (the builtins' /etc/passwd, a CA bundle link,
 * an empty /tmp), kept as host files so that they go through the same walk, cache key and
 * pack as any copyToRoot source, each then laid as a single-path source `{ from, to }`.
 *
 * Why on disk, and why here rather than in a staging directory of the build: the walk
 * reads a file's bytes from its host path, and the layer cache keys a file by its host
 * fingerprint (inode, ctime). A file written afresh by every build would have a new
 * fingerprint every time, so a layer holding a builtin would never be found in the cache.
 * So each is stored once under a name that is the hash of what it is (type, mode,
 * content or link target), in `<cache>/generated/` (in the build's temporary store with
 * --no-cache), checked on every use and rewritten when it is not what its name says.
 * The mode is set explicitly, so the umask cannot change it. The directory is private
 * (0700): it holds a world-writable /tmp that nobody else must be able to fill.
 */

/** A file, symbolic link or directory made by the build rather than copied from the host; `mode` holds the permission bits. */
export type GeneratedNode =
  | { type: "file"; content: Buffer; mode: number }
  | { type: "symlink"; target: string }
  | { type: "dir"; mode: number };

/**
 * The generated files kept in `dir` (`<cache>/generated`), each under the hash of what it is.
 * place() throws IoError when the directory or a file cannot be written.
 */
export class GeneratedFiles {
  private made: Promise<void> | undefined;

  constructor(readonly dir: string) {}

  /** The host path holding `node`, made (or repaired) if needed. */
  async place(node: GeneratedNode): Promise<string> {
    this.made ??= this.makeDir();
    await this.made;
    const path = join(this.dir, nameOf(node));
    try {
      if (await holds(path, node)) return path;
      const temp = join(this.dir, `.tmp-${process.pid}-${randomBytes(6).toString("hex")}`);
      if (node.type === "file") {
        await writeFile(temp, node.content, { mode: 0o600 });
        await chmod(temp, node.mode);
      } else if (node.type === "symlink") {
        await symlink(node.target, temp);
      } else {
        await mkdir(temp);
        await chmod(temp, node.mode);
      }
      // A directory cannot be renamed over a non-empty one: what is there goes first.
      if (node.type === "dir") await rm(path, { recursive: true, force: true });
      await rename(temp, path);
      return path;
    } catch (err) {
      throw ioError(`the generated file ${path}`, err);
    }
  }

  private async makeDir(): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true });
      await chmod(this.dir, 0o700);
    } catch (err) {
      throw ioError(`the directory for generated files ${this.dir}`, err);
    }
  }
}

function nameOf(node: GeneratedNode): string {
  const hash = createHash("sha256");
  if (node.type === "file") hash.update(`file\0${node.mode.toString(8)}\0`).update(node.content);
  else if (node.type === "symlink") hash.update(`symlink\0${node.target}`);
  else hash.update(`dir\0${node.mode.toString(8)}`);
  return `${node.type}-${hash.digest("hex")}`;
}

/** Whether `path` already is `node`: type, mode, and content, link target or emptiness. */
async function holds(path: string, node: GeneratedNode): Promise<boolean> {
  const st = await lstat(path).catch(() => undefined);
  if (st === undefined) return false;
  switch (node.type) {
    case "file":
      return st.isFile() && (st.mode & 0o7777) === node.mode && st.size === node.content.length && (await readFile(path)).equals(node.content);
    case "symlink":
      return st.isSymbolicLink() && (await readlink(path)) === node.target;
    case "dir":
      return st.isDirectory() && (st.mode & 0o7777) === node.mode && (await readdir(path)).length === 0;
  }
}
