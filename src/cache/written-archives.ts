import { lstat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { digestHex, isDigest, sha256, type Digest } from "../model/digest.js";
import type { WrittenArchives } from "../model/written-archives.js";
import { hashFile } from "../layer/hash-file.js";
import { readSealed, writeSealed } from "./sealed-file.js";
import { isRacyChange, wallClockNs } from "./stat-index.js";

/**
 * The archives builds wrote, one sealed record per output path (`<cache>/outputs/`): the
 * archive's identity, the sha256 and size of the file as written, and its lstat (device,
 * inode, size, mtime, ctime) with the time the record was made.
 *
 * A file whose lstat still matches was not replaced, moved over or written since: any
 * write moves its ctime on. Not within the tick the ctime was taken in, though, so a record
 * made in that window (git's racy rule, stat-index.ts) is trusted only after the file's
 * bytes are hashed and found to be those written; the record is then made again, out of
 * the window, and later checks are an lstat.
 */

const FORMAT = "gantry-written-archive-1";

interface WrittenRecord {
  path: string;
  identity: Digest;
  digest: Digest;
  size: number;
  dev: string;
  ino: string;
  mtimeNs: string;
  ctimeNs: string;
  recordedAtNs: string;
}

function isRecord(value: unknown): value is WrittenRecord {
  const r = value as Partial<WrittenRecord> | null;
  return typeof r === "object" && r !== null && typeof r.path === "string" && isDigest(r.identity) && isDigest(r.digest)
    && typeof r.size === "number" && [r.dev, r.ino, r.mtimeNs, r.ctimeNs, r.recordedAtNs].every((v) => typeof v === "string" && /^\d+$/.test(v));
}

/** The records kept under one directory of the cache (`<cache>/outputs/`). */
export class WrittenArchivesDir implements WrittenArchives {
  constructor(readonly root: string) {}

  private recordPath(path: string): string {
    return join(this.root, `${digestHex(sha256(path))}.json`);
  }

  async unchanged(path: string, identity: Digest, signal?: AbortSignal): Promise<number | undefined> {
    const where = resolve(path);
    const found = await readSealed(this.recordPath(where), FORMAT);
    const record = found?.body;
    if (!isRecord(record) || record.path !== where || record.identity !== identity) return undefined;
    const st = await lstat(where, { bigint: true }).catch(() => undefined);
    if (!st?.isFile() || String(st.dev) !== record.dev || String(st.ino) !== record.ino || Number(st.size) !== record.size
      || String(st.mtimeNs) !== record.mtimeNs || String(st.ctimeNs) !== record.ctimeNs) return undefined;
    if (!isRacyChange(st.ctimeNs, BigInt(record.recordedAtNs))) return record.size;
    const digest = await hashFile(where, signal).catch(() => undefined);
    if (digest !== record.digest) return undefined;
    await this.write({ ...record, recordedAtNs: String(wallClockNs()) });
    return record.size;
  }

  async remember(path: string, identity: Digest, written: { digest: Digest; size: number }): Promise<void> {
    const where = resolve(path);
    try {
      const st = await lstat(where, { bigint: true });
      await this.write({
        path: where, identity, digest: written.digest, size: written.size,
        dev: String(st.dev), ino: String(st.ino), mtimeNs: String(st.mtimeNs), ctimeNs: String(st.ctimeNs), recordedAtNs: String(wallClockNs()),
      });
    } catch {
      // Without a record the next build writes the archive again.
    }
  }

  private async write(record: WrittenRecord): Promise<void> {
    await writeSealed(this.recordPath(record.path), FORMAT, record).catch(() => {});
  }
}
