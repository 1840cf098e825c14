import { createHash, type Hash } from "node:crypto";

/** A content digest in its canonical spelling, `sha256:` + 64 lowercase hex digits. */
export type Digest = `sha256:${string}`;

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

export function isDigest(s: unknown): s is Digest {
  return typeof s === "string" && DIGEST_RE.test(s);
}

export function digestHex(d: Digest): string {
  return d.slice("sha256:".length);
}

export function sha256(data: Buffer | string): Digest {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

export function newHasher(): Hash {
  return createHash("sha256");
}

export function hasherDigest(h: Hash): Digest {
  return `sha256:${h.digest("hex")}`;
}
