import { close, createWriteStream, fstat, open, read } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { Readable, type Duplex } from "node:stream";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { FormatError, GantryError, UnsafePathError, ioError, IoError, AbortedError } from "../model/errors.js";
import { decompressor, sniffCompression } from "../compression/compression.js";
import { expansionBound } from "../compression/expansion.js";
import { MAX_JSON_BYTES, cleanEntryName, tooLarge, withSignal, type FileBag } from "./file-bag.js";
import { parseJson } from "../image/parse.js";
import { resolveLinks, type FollowRules, type RootEntry, type RootView } from "../model/root-resolve.js";
import { BLOCK, MAX_META_BYTES, checksumMatches, cString, headerName, isZeroBlock, numeric, parsePax } from "../tar/header.js";

/**
 * Archives are indexed once, then read by range. tar-stream reads a tar front to back
 * and cannot say where an entry's bytes are, so this small scanner reads only the
 * headers (ustar, PAX `path`/`linkpath`/`size`, GNU `L`/`K` long names) with
 * positional reads and records where each entry's data lies.
 */

/** What a tar entry is, as the indexer tells them apart; device nodes, FIFOs and the like are "other". */
export type TarEntryType = "file" | "directory" | "symlink" | "hardlink" | "other";

/** One entry of an indexed archive, with where its data lies so it can be read by range. */
export interface TarEntry {
  /** Cleaned name: no leading `./`, no trailing `/`. */
  name: string;
  /** Byte offset of the entry's data in the archive. */
  offset: number;
  /** Size in bytes of the data; 0 for every type but "file". */
  size: number;
  type: TarEntryType;
  /** The link target as the archive states it (not cleaned); meaningful for symlinks and hardlinks only. */
  linkname: string;
  /**
   * How many entries of the archive have this cleaned name (a directory repeated counts
   * once: it holds nothing). Above 1 the archive is ambiguous: docker load extracts it and
   * reads the last copy, skopeo reads the first, so two tools would see two images.
   */
  copies: number;
}


const openFd = promisify(open);
const readFd = promisify(read);
const fstatFd = promisify(fstat);
const closeFd = promisify(close);

async function readAt(fd: number, pos: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await readFd(fd, buf, filled, length - filled, pos + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buf.subarray(0, filled);
}

function entryType(flag: string): TarEntryType {
  switch (flag) {
    case "0": case "\0": case "7": return "file";
    case "1": return "hardlink";
    case "2": return "symlink";
    case "5": return "directory";
    default: return "other";
  }
}

/** Types whose header `size` counts data blocks that follow (python's tarfile agrees). */
function hasDataBlocks(type: TarEntryType): boolean {
  return type === "file" || type === "other";
}

/**
 * Scans a tar's headers and returns its entries by cleaned name. A name that occurs again
 * keeps its last entry (as when extracting), counted in `copies` for the reader to refuse
 * (see `refuseDuplicates`). `label` names the archive in errors.
 */
export async function scanTar(fd: number, label: string): Promise<Map<string, TarEntry>> {
  const fileSize = (await fstatFd(fd)).size;
  const entries = new Map<string, TarEntry>();
  const truncated = (what: string): FormatError =>
    new FormatError(`${label} is truncated (${what}); the archive is incomplete, write or download it again`);
  let pos = 0;
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax = new Map<string, string>();
  for (;;) {
    if (pos + BLOCK > fileSize) throw truncated(pos === 0 ? "it is empty" : `it ends at byte ${fileSize} without the end-of-archive marker`);
    const header = await readAt(fd, pos, BLOCK);
    if (isZeroBlock(header)) break;
    if (!checksumMatches(header)) {
      throw new FormatError(pos === 0
        ? `${label} is not a tar archive; give an image archive (docker save, skopeo, gantry build)`
        : `${label} has a damaged tar header at byte ${pos}; the archive is corrupt`);
    }
    const flag = String.fromCharCode(header[156]!);
    const type = entryType(flag);
    const paxSize = pax.get("size");
    const size = paxSize !== undefined && /^\d+$/.test(paxSize) ? Number(paxSize) : numeric(header, 124, 12);
    if (size === undefined) throw new FormatError(`${label} has a tar header with an unreadable size at byte ${pos}; the archive is corrupt`);
    const dataStart = pos + BLOCK;
    const isMeta = flag === "x" || flag === "g" || flag === "L" || flag === "K";
    const dataBlocks = isMeta || hasDataBlocks(type) ? size : 0;
    if (dataStart + dataBlocks > fileSize) throw truncated(`an entry at byte ${pos} needs ${dataBlocks} bytes past the end of the file`);
    const next = dataStart + Math.ceil(dataBlocks / BLOCK) * BLOCK;

    if (isMeta) {
      if (size > MAX_META_BYTES) throw new FormatError(`${label} has a ${size}-byte tar metadata record at byte ${pos}; the archive is malformed`);
      const data = await readAt(fd, dataStart, size);
      if (flag === "x") pax = new Map([...pax, ...parsePax(data, label)]);
      else if (flag === "L") longName = cString(data, 0, data.length);
      else if (flag === "K") longLink = cString(data, 0, data.length);
      // "g" (global PAX) changes no name or size we rely on.
      pos = next;
      continue;
    }

    const rawName = pax.get("path") ?? longName ?? headerName(header);
    const linkname = pax.get("linkpath") ?? longLink ?? cString(header, 157, 100);
    pax = new Map();
    longName = undefined;
    longLink = undefined;
    const name = cleanEntryName(rawName);
    // A name that climbs out of the archive can never be asked for by a clean lookup: skip it.
    if (name !== undefined && name !== "") {
      const earlier = entries.get(name);
      const copies = earlier === undefined ? 1 : earlier.type === "directory" && type === "directory" ? earlier.copies : earlier.copies + 1;
      entries.set(name, { name, offset: dataStart, size: type === "file" ? size : 0, type, linkname, copies });
    }
    pos = next;
  }
  return entries;
}

/**
 * Refuses an archive that holds a name twice (directories aside), whichever entry it is.
 * Not only the names gantry reads: a duplicated `repositories` or layer file that gantry
 * would skip is one that `docker load` or skopeo reads, each its own copy, so the archive
 * means different images to different tools. No tool that writes image archives repeats
 * a name; an archive that does was appended to or made to deceive.
 */
export function refuseDuplicates(entries: ReadonlyMap<string, TarEntry>, label: string): void {
  for (const entry of entries.values()) {
    if (entry.copies > 1) {
      throw new FormatError(`${entry.name} in ${label} occurs ${entry.copies} times; an image archive holds each entry once, and tools disagree on which copy counts, so the archive is refused`);
    }
  }
}

/**
 * How names are looked up in an image archive: every link is followed, to files too, and
 * none may leave the archive (an absolute target or a climbing `..` is refused).
 */
const INSIDE_THE_ARCHIVE: FollowRules = { followLast: true, follow: "all", confine: "refuse" };

/** An archive entry as the link resolver sees it. */
function asRootEntry(entry: TarEntry | undefined): RootEntry | undefined {
  if (entry === undefined) return undefined;
  switch (entry.type) {
    case "directory": return { kind: "dir" };
    case "symlink": return { kind: "symlink", target: entry.linkname };
    case "hardlink": return { kind: "hardlink", target: entry.linkname };
    default: return { kind: "other" };
  }
}

const closeOnCollect = new FinalizationRegistry<number>((fd) => { close(fd, () => {}); });

/**
 * A byte range of a shared descriptor, read with positional reads. (fs.ReadStream
 * closes its descriptor when destroyed, whatever autoClose says; this one never does.)
 * It holds its owner, so the descriptor cannot be collected while a read is going on.
 */
class RangeStream extends Readable {
  private pos: number;

  constructor(
    private readonly fd: number,
    start: number,
    private readonly end: number,
    private readonly label: string,
    readonly owner?: object,
  ) {
    super({ highWaterMark: 512 * 1024 });
    this.pos = start;
  }

  override _read(size: number): void {
    const length = Math.min(size, this.end - this.pos);
    if (length <= 0) {
      this.push(null);
      return;
    }
    readAt(this.fd, this.pos, length).then((chunk) => {
      if (chunk.length === 0) {
        // Reading "to the end" stops at end of file; a bounded range must not.
        if (this.end === Infinity) this.push(null);
        else this.destroy(new FormatError(`${this.label} shrank while it was being read; do not change an archive while gantry reads it`));
        return;
      }
      this.pos += chunk.length;
      this.push(chunk);
    }, (err: unknown) => this.destroy(err as Error));
  }
}

/**
 * An indexed tar as a FileBag. It holds the archive open by descriptor, so an archive
 * replaced on disk (say, rebuilt in place) goes on reading the bytes it indexed.
 * Symlinks and hard links inside the archive are followed, never out of it.
 */
export class TarBag implements FileBag {
  private closed = false;
  /** The archive as the link resolver sees it. */
  private readonly view: RootView;

  private constructor(
    readonly label: string,
    private readonly fd: number,
    private readonly entries: Map<string, TarEntry>,
  ) {
    refuseDuplicates(entries, label);
    closeOnCollect.register(this, fd, this);
    this.view = { name: label, lookup: (path) => asRootEntry(entries.get(path)) };
  }

  /** Indexes the archive at `path`; a gzip or zstd compressed archive is decompressed to a temporary file first. */
  static async open(path: string, signal?: AbortSignal): Promise<TarBag> {
    let fd: number;
    try {
      fd = await openFd(path, "r");
    } catch (err) {
      throw ioError(`the archive ${path}`, err);
    }
    try {
      fd = await uncompressed(fd, path, signal);
      return new TarBag(path, fd, await scanTar(fd, path));
    } catch (err) {
      close(fd, () => {});
      throw err;
    }
  }

  /** Spools a stream (standard input) to an unlinked temporary file once, then indexes it. */
  static async fromStream(input: Readable, label: string, signal?: AbortSignal): Promise<TarBag> {
    let fd = await spool(input, label, signal);
    try {
      fd = await uncompressed(fd, label, signal);
      return new TarBag(label, fd, await scanTar(fd, label));
    } catch (err) {
      close(fd, () => {});
      throw err;
    }
  }

  /** Releases the file descriptor now, rather than when the bag is garbage-collected. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    closeOnCollect.unregister(this);
    await closeFd(this.fd);
  }

  /** Every entry name, in archive order. */
  names(): string[] {
    return [...this.entries.keys()];
  }

  describe(name: string): string {
    return `${name} in ${this.label}`;
  }

  /**
   * The entry `name` leads to: symlinks (skopeo writes `ID/layer.tar -> ../HEX.tar`) and
   * hard links (by archive path) are followed, and any link that would leave the archive
   * is refused.
   */
  private lookup(name: string): TarEntry | undefined {
    const clean = cleanEntryName(name);
    if (clean === undefined || clean === "") {
      throw new UnsafePathError(`the entry name "${name}" in ${this.label} points outside the archive; the image is malformed`);
    }
    return this.entries.get(resolveLinks(this.view, clean, INSIDE_THE_ARCHIVE));
  }

  private file(name: string): TarEntry {
    const entry = this.lookup(name);
    if (!entry) throw new FormatError(`${this.describe(name)} does not exist; the archive is incomplete or not an image of this kind`);
    if (entry.type !== "file") throw new FormatError(`${this.describe(name)} is not a regular file; the archive is malformed`);
    return entry;
  }

  private assertOpen(): void {
    if (this.closed) throw new IoError(`the archive ${this.label} was closed before it was read`);
  }

  async has(name: string): Promise<boolean> {
    return this.lookup(name)?.type === "file";
  }

  async size(name: string): Promise<number> {
    return this.file(name).size;
  }

  async head(name: string, n: number): Promise<Buffer> {
    this.assertOpen();
    const e = this.file(name);
    return readAt(this.fd, e.offset, Math.min(n, e.size));
  }

  async readBytes(name: string, maxBytes = MAX_JSON_BYTES): Promise<Buffer> {
    this.assertOpen();
    const e = this.file(name);
    if (e.size > maxBytes) throw tooLarge(this.describe(name), e.size, maxBytes);
    return readAt(this.fd, e.offset, e.size);
  }

  async readJson(name: string): Promise<unknown> {
    return parseJson(await this.readBytes(name), this.describe(name));
  }

  async open(name: string, signal?: AbortSignal): Promise<Readable> {
    this.assertOpen();
    const e = this.file(name);
    return withSignal(new RangeStream(this.fd, e.offset, e.offset + e.size, this.label, this), signal);
  }
}

/**
 * A descriptor on the archive's tar: `fd` itself, or, for a gzip or zstd compressed archive,
 * a temporary file it is decompressed into (within the bomb bound of its size), `fd` closed.
 */
async function uncompressed(fd: number, label: string, signal: AbortSignal | undefined): Promise<number> {
  const compression = sniffCompression(await readAt(fd, 0, 4));
  if (compression === "none") return fd;
  const bound = expansionBound((await fstatFd(fd)).size, label);
  const plain = await spool(new RangeStream(fd, 0, Infinity, label), label, signal, decompressor(compression, bound));
  await closeFd(fd);
  return plain;
}

/**
 * Copies a stream (through `decompress`, when given) into a temporary file that is unlinked
 * at once; returns a descriptor open on it.
 */
async function spool(input: Readable, label: string, signal?: AbortSignal, decompress?: Duplex): Promise<number> {
  let dir: string;
  try {
    dir = await mkdtemp(join(tmpdir(), "gantry-spool-"));
  } catch (err) {
    throw ioError("the temporary directory", err);
  }
  const path = posix.join(dir, "archive.tar");
  try {
    try {
      const out = createWriteStream(path, { mode: 0o600 });
      await (decompress ? pipeline(input, decompress, out, signal ? { signal } : {}) : pipeline(input, out, signal ? { signal } : {}));
    } catch (err) {
      if (signal?.aborted) throw new AbortedError(signal.reason);
      if (err instanceof GantryError) throw err;
      // What is not the file system's (no syscall) is the decompressor's: zlib's or zstd's words.
      if (decompress && (err as NodeJS.ErrnoException).syscall === undefined) {
        throw new FormatError(`${label} is a damaged compressed stream (${(err as Error).message}); the archive is corrupt`, { cause: err });
      }
      throw ioError(`spooling ${label} to a temporary file`, err);
    }
    return await openFd(path, "r");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
