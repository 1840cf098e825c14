import { createHash, hash as hashOnce, type Hash } from "node:crypto";

/** A content digest in its canonical spelling, `sha256:` + 64 lowercase hex digits. */
export type Digest = `sha256:${string}`;

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

/** Whether `s` is a digest in the canonical spelling (sha256, 64 lowercase hex digits). */
export function isDigest(s: unknown): s is Digest {
  return typeof s === "string" && DIGEST_RE.test(s);
}

/** The 64 hex digits of a digest, without the `sha256:` prefix. */
export function digestHex(d: Digest): string {
  return d.slice("sha256:".length);
}

/** The digest of `data` (a string is hashed as UTF-8). */
export function sha256(data: Buffer | string): Digest {
  return hasherDigest(createHash("sha256").update(data));
}

/** A fresh SHA-256 hash to feed incrementally; finish it with hasherDigest. */
export function newHasher(): Hash {
  return createHash("sha256");
}

const PREFIX = Buffer.from("sha256:", "latin1");

/**
 * The digest of what `h` hashed. A merged tree keeps one per regular file (800,000 in a
 * large layer), so it is made as one flat string: a template literal makes a cons string
 * (the prefix and the hex joined by pointers), 112 bytes where a flat one takes 88.
 */
export function hasherDigest(h: Hash): Digest {
  return digestOfHex(h.digest("hex"));
}

function digestOfHex(hex: string): Digest {
  const out = Buffer.allocUnsafe(PREFIX.length + 64);
  PREFIX.copy(out, 0);
  out.write(hex, PREFIX.length, "latin1");
  return out.toString("latin1") as Digest;
}

/**
 * The sha256 of a file's bytes as they are read, made for layers of many small files: a
 * file read in one piece is hashed in one call, with no Hash object (a Hash costs about
 * 4 µs to make and finish, as much as hashing a 2 KB file). Only a second piece makes one.
 */
export class ContentDigester {
  private hash: Hash | undefined;
  private result: Digest | undefined;

  /** Hashes the next piece of the content. */
  update(piece: Uint8Array): void {
    (this.hash ??= createHash("sha256")).update(piece);
  }

  /** Hashes the content's last piece: in one call when it is all of it (no piece came before). */
  last(piece: Uint8Array): void {
    if (this.hash === undefined) this.result = digestOfHex(hashOnce("sha256", piece, "hex"));
    else this.hash.update(piece);
  }

  digest(): Digest {
    return this.result ?? (this.hash === undefined ? EMPTY_DIGEST : hasherDigest(this.hash));
  }
}

/**
 * The digest of no bytes: every empty file's content digest, one string shared by all.
 * Written out rather than computed, so that loading this module does not load node's crypto.
 */
export const EMPTY_DIGEST: Digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
