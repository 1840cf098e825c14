import { Transform } from "node:stream";
import { FormatError } from "../model/errors.js";
import { BLOCK, MAX_META_BYTES, checksumMatches, isZeroBlock, numeric, parsePax } from "./header.js";

/**
 * Whether a stream is a tar, checked as it flows without keeping it: every header's
 * checksum, and each entry's data present in full. A layer whose digest and diff_id are
 * right can still be no tar at all (33 bytes of anything, stored uncompressed, hash to
 * their own diff_id), and `docker load` fails on it long after gantry wrote it; this is
 * what lets a copy refuse it first. The rules are Go's archive/tar's, which docker and
 * containerd read layers with:
 *
 * - the stream may end cleanly at a header boundary (an empty stream is an empty layer), or
 *   right after an entry's data, before its padding (umoci's `insert` writes such layers);
 * - a zero block ends the archive; the block after it, if any, must be zero too, and what
 *   follows two zero blocks is ignored;
 * - links, symlinks, devices, fifos and directories carry no data whatever their size
 *   field says; every other type (PAX and GNU metadata included) carries `size` bytes,
 *   padded to a block; a PAX `size` record overrides the next header's.
 */

const HEADER_ONLY = new Set(["1", "2", "3", "4", "5", "6"]);

/**
 * The check as a state machine, fed a stream's chunks in order: `feed` and `end` throw a FormatError
 * naming the stream once its bytes cannot be a tar. It holds one header block and a PAX record, never data.
 */
export class TarShape {
  private readonly block = Buffer.alloc(BLOCK);
  private filled = 0;
  /** Data bytes (with padding) still to pass before the next header. */
  private skip = 0;
  /** How many of those are the padding after the data. */
  private padding = 0;
  /** A PAX header's data, collected to read its `size` record. */
  private pax: { data: Buffer; filled: number } | undefined;
  private paxSize: number | undefined;
  private zeroBlocks = 0;
  private offset = 0;

  /** `what` names the stream in errors ("layer 2 of 3 (…)"). */
  constructor(private readonly what: string) {}

  /** Takes the next bytes of the stream; throws a FormatError as soon as they cannot be a tar. */
  feed(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length && this.zeroBlocks < 2) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - pos);
        if (this.pax) this.collectPax(chunk.subarray(pos, pos + n));
        this.skip -= n;
        pos += n;
        this.offset += n;
        if (this.skip === 0) this.endPax();
        continue;
      }
      const n = Math.min(BLOCK - this.filled, chunk.length - pos);
      chunk.copy(this.block, this.filled, pos, pos + n);
      this.filled += n;
      pos += n;
      if (this.filled === BLOCK) {
        this.filled = 0;
        this.header();
        this.offset += BLOCK;
      }
    }
  }

  /**
   * The stream has ended: it must not end inside a header, an entry's data or its padding.
   * It may end right after an entry's data, its padding and the end-of-archive blocks
   * missing altogether: Go's reader takes that as the end, and umoci writes such layers.
   */
  end(): void {
    if (this.zeroBlocks >= 2 || (this.filled === 0 && (this.skip === 0 || this.skip === this.padding))) return;
    const where = this.filled > 0 ? "inside a header" : this.skip > this.padding ? "inside an entry's data" : "inside the padding after an entry";
    throw new FormatError(`${this.what} is not a whole tar: it ends ${where} at byte ${this.offset + this.filled}; the layer is damaged`);
  }

  private header(): void {
    if (isZeroBlock(this.block)) {
      this.zeroBlocks++;
      return;
    }
    if (this.zeroBlocks > 0 || !checksumMatches(this.block)) {
      throw new FormatError(this.offset === 0
        ? `${this.what} is not a tar archive, so it is not a layer (its first block is no tar header); the image is damaged`
        : `${this.what} has a damaged tar header at byte ${this.offset} of its uncompressed stream; the layer is corrupt`);
    }
    const flag = String.fromCharCode(this.block[156]!);
    const size = this.paxSize ?? numeric(this.block, 124, 12);
    if (size === undefined) throw new FormatError(`${this.what} has a tar header with an unreadable size at byte ${this.offset}; the layer is corrupt`);
    const isPax = flag === "x";
    this.paxSize = undefined;
    if (isPax) {
      if (size > MAX_META_BYTES) throw new FormatError(`${this.what} has a ${size}-byte PAX record at byte ${this.offset}; the layer is malformed`);
      this.pax = { data: Buffer.alloc(size), filled: 0 };
    }
    const data = HEADER_ONLY.has(flag) ? 0 : size;
    this.skip = Math.ceil(data / BLOCK) * BLOCK;
    this.padding = this.skip - data;
    if (this.skip === 0) this.endPax();
  }

  private collectPax(bytes: Buffer): void {
    const pax = this.pax!;
    const room = pax.data.length - pax.filled;
    bytes.copy(pax.data, pax.filled, 0, Math.min(room, bytes.length));
    pax.filled += Math.min(room, bytes.length);
  }

  private endPax(): void {
    if (!this.pax) return;
    const size = parsePax(this.pax.data, this.what).get("size");
    this.pax = undefined;
    if (size !== undefined && /^\d+$/.test(size)) this.paxSize = Number(size);
  }
}

/**
 * A pass-through that fails at its end if what flowed is not a tar. A fault found early is
 * held until then, so that a check upstream that speaks only at the end (a digest) is
 * heard first: bytes that are not the blob named are a digest mismatch, whatever their
 * shape. What flows is passed on unchanged either way.
 */
export function tarShapeChecking(what: string): Transform {
  const shape = new TarShape(what);
  let fault: Error | undefined;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      if (fault === undefined) {
        try {
          shape.feed(chunk);
        } catch (err) {
          fault = err as Error;
        }
      }
      done(null, chunk);
    },
    flush(done) {
      try {
        if (fault === undefined) shape.end();
        done(fault);
      } catch (err) {
        done(err as Error);
      }
    },
  });
}
