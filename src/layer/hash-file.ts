import { createReadStream } from "node:fs";
import { hasherDigest, newHasher, type Digest } from "../model/digest.js";
import { GantryError } from "../model/errors.js";
import { sourceUnreadable } from "./source-error.js";

/** sha256 of a host file's bytes, streamed. A read failure is SOURCE_UNREADABLE naming the file. */
export async function hashFile(hostPath: string, signal?: AbortSignal): Promise<Digest> {
  const hash = newHasher();
  try {
    const stream = createReadStream(hostPath, signal === undefined ? { highWaterMark: 256 * 1024 } : { highWaterMark: 256 * 1024, signal });
    for await (const chunk of stream) hash.update(chunk as Buffer);
  } catch (err) {
    if (signal?.aborted) throw new GantryError("ABORTED", "the operation was aborted", { cause: signal.reason });
    throw sourceUnreadable(hostPath, err);
  }
  return hasherDigest(hash);
}

/** Runs `work` over `items` with at most `limit` running at once; results keep the items' order. */
export async function mapLimited<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
