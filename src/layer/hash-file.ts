import { closeSync, openSync, readSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { ContentDigester, hasherDigest, newHasher, type Digest } from "../model/digest.js";
import { AbortedError } from "../model/errors.js";
import { sourceUnreadable } from "./source-error.js";

const CHUNK = 256 * 1024;

/**
 * sha256 of a host file's bytes, read in chunks into one buffer that is reused (the hash
 * consumes each chunk before the next read), so hashing thousands of small files makes
 * no garbage. A read failure is SOURCE_UNREADABLE naming the file.
 */
export async function hashFile(hostPath: string, signal?: AbortSignal): Promise<Digest> {
  const hash = newHasher();
  let file: FileHandle | undefined;
  try {
    file = await open(hostPath, "r");
    const chunk = Buffer.allocUnsafe(CHUNK);
    for (;;) {
      if (signal?.aborted) throw new AbortedError(signal.reason);
      const { bytesRead } = await file.read(chunk, 0, CHUNK, null);
      if (bytesRead === 0) break;
      hash.update(chunk.subarray(0, bytesRead));
    }
  } catch (err) {
    throw sourceUnreadable(hostPath, err);
  } finally {
    await file?.close();
  }
  return hasherDigest(hash);
}

/**
 * sha256 of a host file's bytes, read with synchronous calls into `chunk` (reused across
 * files): on trees of many small files the promised calls of hashFile cost far more than
 * the reads. The chunk is filled before it is hashed, so a file that fits is hashed in one
 * call (ContentDigester). A read failure is SOURCE_UNREADABLE naming the file.
 */
export function hashFileSync(hostPath: string, chunk: Buffer): Digest {
  const digester = new ContentDigester();
  let fd: number | undefined;
  try {
    fd = openSync(hostPath, "r");
    let used = 0;
    for (;;) {
      const n = readSync(fd, chunk, used, chunk.length - used, null);
      used += n;
      if (n === 0) {
        digester.last(chunk.subarray(0, used));
        break;
      }
      if (used === chunk.length) {
        digester.update(chunk);
        used = 0;
      }
    }
  } catch (err) {
    throw sourceUnreadable(hostPath, err);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  return digester.digest();
}
