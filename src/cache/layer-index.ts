import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isDigest } from "../model/digest.js";
import { ioError } from "../model/errors.js";
import type { Compression } from "../model/mediatypes.js";
import { writeFileAtomically } from "../util/atomic.js";
import type { BlobStore, StoredLayerBlob } from "./blob-store.js";

/**
 * The layer index: `<cache>/layers/<key>.json` maps a layer's content key (content-key.ts:
 * everything that decides its bytes) to the blob those inputs gave (`{ digest, diffId,
 * size, compression }`), so a rebuild with unchanged inputs neither walks the base's layers
 * nor packs nor compresses again.
 *
 * Entries are written to a temporary file and renamed, so concurrent builds never see a
 * partial entry; two builds recording one key write the same content.
 */

/** What the index needs of a key. */
export interface IndexKey {
  /** 64 hex digits. */
  hex: string;
}

/** `<cache>/layers`: layer key → stored blob. */
export class LayerIndex {
  constructor(readonly root: string) {}

  pathOf(key: IndexKey): string {
    return join(this.root, `${key.hex}.json`);
  }

  /**
   * The blob recorded for `key`, if the record is readable and the blob is still in
   * `store` with its recorded size; anything else is a miss (a damaged record is simply
   * written again after the layer is packed).
   */
  async lookup(key: IndexKey, store: BlobStore): Promise<StoredLayerBlob | undefined> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(this.pathOf(key), "utf8"));
    } catch {
      return undefined;
    }
    const blob = asStoredLayerBlob(parsed);
    if (blob === undefined) return undefined;
    if ((await store.has(blob.digest)) !== blob.size) return undefined;
    await store.touch(blob.digest);
    return blob;
  }

  /** Records `blob` under `key`, atomically. */
  async record(key: IndexKey, blob: StoredLayerBlob): Promise<void> {
    const path = this.pathOf(key);
    const json = JSON.stringify({ digest: blob.digest, diffId: blob.diffId, size: blob.size, compression: blob.compression });
    try {
      await mkdir(this.root, { recursive: true });
    } catch (err) {
      throw ioError(`the layer index directory ${this.root}`, err);
    }
    await writeFileAtomically(path, (temp) => writeFile(temp, `${json}\n`));
  }
}

const COMPRESSIONS: readonly string[] = ["gzip", "zstd", "none"] satisfies Compression[];

function asStoredLayerBlob(value: unknown): StoredLayerBlob | undefined {
  if (value === null || typeof value !== "object") return undefined;
  const { digest, diffId, size, compression } = value as Record<string, unknown>;
  if (!isDigest(digest) || !isDigest(diffId)) return undefined;
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) return undefined;
  if (typeof compression !== "string" || !COMPRESSIONS.includes(compression)) return undefined;
  return { digest, diffId, size, compression: compression as Compression };
}
