import { Transform, type Duplex, type Readable, type TransformCallback } from "node:stream";
import { DigestMismatchError } from "./errors.js";
import { newHasher, type Digest } from "./digest.js";

/**
 * A pass-through that hashes what flows and fails at the end when the bytes do not
 * match `expected` (or exceed `maxSize`, when given). `what` names the blob in the error.
 * Nothing downstream should trust data from a verifying stream until it has ended cleanly.
 */
export function verifying(expected: Digest, what: string, maxSize?: number): Transform {
  const hash = newHasher();
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      seen += chunk.length;
      if (maxSize !== undefined && seen > maxSize) {
        cb(new DigestMismatchError(`${what} is larger than its declared size of ${maxSize} bytes`));
        return;
      }
      hash.update(chunk);
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      if (maxSize !== undefined && seen !== maxSize) {
        cb(new DigestMismatchError(`${what} is ${seen} bytes, not its declared ${maxSize}`));
        return;
      }
      const actual = `sha256:${hash.digest("hex")}`;
      if (actual !== expected) {
        cb(new DigestMismatchError(`${what} does not match its digest: expected ${expected}, got ${actual}`));
        return;
      }
      cb();
    },
  });
}

/**
 * Pipes `source` through `transform` and returns the transform's end: an error of the
 * source fails the result (as `mapError` turns it), and closing the result (done, failed or
 * abandoned) releases the source.
 */
export function chain(source: Readable, transform: Duplex, mapError: (err: Error) => Error = (err) => err): Readable {
  source.on("error", (err) => transform.destroy(mapError(err)));
  transform.on("close", () => { if (!source.destroyed) source.destroy(); });
  return source.pipe(transform);
}

/** A pass-through that fails unless exactly `size` bytes flow (for bytes already hashed when they were written). */
export function sizing(size: number, what: string): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      seen += chunk.length;
      if (seen > size) cb(new DigestMismatchError(`${what} is larger than its declared size of ${size} bytes`));
      else cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      cb(seen === size ? null : new DigestMismatchError(`${what} is ${seen} bytes, not its declared ${size}`));
    },
  });
}

/** Pipes `source` through `verifying(...)`, forwarding errors both ways. */
export function verified(source: Readable, expected: Digest, what: string, maxSize?: number): Readable {
  return chain(source, verifying(expected, what, maxSize));
}

/** A pass-through that reports the digest and size of what flowed, once it has ended. */
export function measuring(onBytes?: (bytes: number) => void): { stream: Transform; result: Promise<{ digest: Digest; size: number }> } {
  const hash = newHasher();
  let size = 0;
  let resolve!: (v: { digest: Digest; size: number }) => void;
  let reject!: (e: unknown) => void;
  const result = new Promise<{ digest: Digest; size: number }>((res, rej) => { resolve = res; reject = rej; });
  result.catch(() => {});
  const stream = new Transform({
    transform(chunk: Buffer, _enc, cb) { size += chunk.length; hash.update(chunk); onBytes?.(chunk.length); cb(null, chunk); },
    flush(cb) { resolve({ digest: `sha256:${hash.digest("hex")}`, size }); cb(); },
  });
  stream.on("error", reject);
  return { stream, result };
}
