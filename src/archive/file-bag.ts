import { fileReader } from "../util/io.js";
import { open, realpath, stat } from "node:fs/promises";
import { posix, sep } from "node:path";
import type { Readable } from "node:stream";
import { FormatError, UnsafePathError, ioError, AbortedError } from "../model/errors.js";
import { MAX_DOCUMENT_BYTES, parseJson } from "../image/parse.js";

/**
 * A set of named files that image readers look into: an image layout or unpacked
 * archive on disk (DirBag), or an indexed tar (TarBag in tar-index.ts). Every format
 * reader works on this interface alone, so each format is read the same way from a
 * directory and from an archive.
 *
 * Names are archive-relative, `/`-separated; `./` prefixes are ignored. A name that
 * would leave the bag (`..`, absolute, a symlink pointing out) is refused.
 */
export interface FileBag {
  /** The path of the directory or archive, for messages. */
  readonly label: string;
  has(name: string): Promise<boolean>;
  /** Size in bytes of a regular file (symlinks followed). */
  size(name: string): Promise<number>;
  /** Up to `n` first bytes of a file, for sniffing its compression. */
  head(name: string, n: number): Promise<Buffer>;
  /** A whole small file (JSON), refusing one larger than `maxBytes`. */
  readBytes(name: string, maxBytes?: number): Promise<Buffer>;
  /** A whole small file parsed as JSON; bad JSON is a FormatError naming the entry. */
  readJson(name: string): Promise<unknown>;
  /** A stream of the file's bytes, unverified: callers verify against a digest. */
  open(name: string, signal?: AbortSignal): Promise<Readable>;
  /** Names an entry in messages, e.g. `manifest.json in /images/app.tar`. */
  describe(name: string): string;
}

/** Small metadata files (manifests, configs, index.json) are read whole, up to the size of an image document. */
export const MAX_JSON_BYTES = MAX_DOCUMENT_BYTES;

/** A metadata file larger than `maxBytes`, which no reader takes whole. */
export function tooLarge(what: string, size: number, maxBytes: number): FormatError {
  return new FormatError(`${what} is ${size} bytes, more than the ${maxBytes} a metadata file may have; the image is malformed`);
}

/**
 * The canonical spelling of an entry name: `./a//b/` → `a/b`. Returns undefined for a
 * name that climbs out of the bag or is absolute, so each caller can say what it was.
 */
export function cleanEntryName(name: string): string | undefined {
  if (name.startsWith("/")) return undefined;
  const norm = posix.normalize(name).replace(/\/+$/, "");
  if (norm === ".." || norm.startsWith("../")) return undefined;
  return norm === "." ? "" : norm.replace(/^(\.\/)+/, "");
}


/** Ties an AbortSignal to a stream: aborting destroys it with an ABORTED error. */
export function withSignal(stream: Readable, signal: AbortSignal | undefined): Readable {
  if (!signal) return stream;
  const onAbort = (): void => {
    stream.destroy(new AbortedError(signal.reason));
  };
  if (signal.aborted) {
    onAbort();
    return stream;
  }
  signal.addEventListener("abort", onAbort, { once: true });
  stream.once("close", () => signal.removeEventListener("abort", onAbort));
  return stream;
}

/** A directory on disk seen as a FileBag: an OCI layout, or an unpacked docker-archive. */
export class DirBag implements FileBag {
  private rootReal: Promise<string> | undefined;

  constructor(readonly root: string) {}

  get label(): string { return this.root; }

  describe(name: string): string {
    return `${name} in ${this.root}`;
  }

  /** The real path of an entry, refused when it (or a symlink on the way) leaves the directory. */
  private async resolve(name: string): Promise<string | undefined> {
    const clean = cleanEntryName(name);
    if (clean === undefined || clean === "") {
      throw new UnsafePathError(`the entry name "${name}" in ${this.root} points outside the image directory; the image is malformed`);
    }
    this.rootReal ??= realpath(this.root).catch((err: unknown) => { throw ioError(`the image directory ${this.root}`, err); });
    const root = await this.rootReal;
    let real: string;
    try {
      real = await realpath(posix.join(root, clean));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw ioError(this.describe(clean), err);
    }
    if (!real.startsWith(root + sep)) {
      throw new UnsafePathError(`${this.describe(clean)} is a symlink pointing outside the image directory; the image is malformed`);
    }
    return real;
  }

  private async resolveFile(name: string): Promise<{ path: string; size: number }> {
    const path = await this.resolve(name);
    if (path === undefined) throw new FormatError(`${this.describe(name)} does not exist; the image is incomplete`);
    const st = await stat(path).catch((err: unknown) => { throw ioError(this.describe(name), err); });
    if (!st.isFile()) throw new FormatError(`${this.describe(name)} is not a regular file; the image is malformed`);
    return { path, size: st.size };
  }

  async has(name: string): Promise<boolean> {
    const path = await this.resolve(name);
    if (path === undefined) return false;
    return stat(path).then((st) => st.isFile(), () => false);
  }

  async size(name: string): Promise<number> {
    return (await this.resolveFile(name)).size;
  }

  async head(name: string, n: number): Promise<Buffer> {
    const { path } = await this.resolveFile(name);
    try {
      const fh = await open(path, "r");
      try {
        const buf = Buffer.alloc(n);
        const { bytesRead } = await fh.read(buf, 0, n, 0);
        return buf.subarray(0, bytesRead);
      } finally {
        await fh.close();
      }
    } catch (err) {
      throw ioError(this.describe(name), err);
    }
  }

  async readBytes(name: string, maxBytes = MAX_JSON_BYTES): Promise<Buffer> {
    const { path, size } = await this.resolveFile(name);
    if (size > maxBytes) throw tooLarge(this.describe(name), size, maxBytes);
    try {
      const fh = await open(path, "r");
      try {
        return await fh.readFile();
      } finally {
        await fh.close();
      }
    } catch (err) {
      throw ioError(this.describe(name), err);
    }
  }

  async readJson(name: string): Promise<unknown> {
    return parseJson(await this.readBytes(name), this.describe(name));
  }

  async open(name: string, signal?: AbortSignal): Promise<Readable> {
    const { path } = await this.resolveFile(name);
    return withSignal(fileReader(path), signal);
  }
}
