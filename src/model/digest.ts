import { createHash, type Hash } from "node:crypto";

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
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/** A fresh SHA-256 hash to feed incrementally; finish it with hasherDigest. */
export function newHasher(): Hash {
  return createHash("sha256");
}

/** Finishes `h` and returns its digest; the hash cannot be used afterwards. */
export function hasherDigest(h: Hash): Digest {
  return `sha256:${h.digest("hex")}`;
}
