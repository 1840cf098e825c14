import { fileReader } from "../util/io.js";
import { mkdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { ownerTag, sweepStale } from "../util/temp-names.js";
import { touchUsed } from "./prune.js";
import type { Readable } from "node:stream";
import { digestHex, type Digest } from "../model/digest.js";
import { ioError } from "../model/errors.js";
import type { Layer } from "../model/image.js";
import type { ContentStore } from "../model/content-store.js";
import { makeLayer } from "../image/layer.js";
import type { Compression } from "../model/mediatypes.js";

/**
 * A content-addressed directory of blobs: `ROOT/sha256/HEX`. Blobs are written to a
 * temporary name in the same directory and renamed to their digest once complete,
 * so a reader never sees a partial blob and two writers of one blob never clash.
 */
export class BlobStore implements ContentStore {
  /** Whether what killed writers left in tmp/ was swept (once per store). */
  private swept = false;

  constructor(readonly root: string) {}

  pathOf(digest: Digest): string {
    return join(this.root, "sha256", digestHex(digest));
  }

  async has(digest: Digest): Promise<number | undefined> {
    try {
      return (await stat(this.pathOf(digest))).size;
    } catch {
      return undefined;
    }
  }

  /** The blob's bytes; reading it is a use, which `gantry cache prune` goes by (prune.ts). */
  async open(digest: Digest): Promise<Readable> {
    await this.touch(digest);
    return fileReader(this.pathOf(digest));
  }

  /** Marks the blob used now, so pruning by age or size keeps it longest. */
  touch(digest: Digest): Promise<void> {
    return touchUsed(this.pathOf(digest));
  }

  /** A fresh temporary path inside the store, for a writer that learns the digest at the end. */
  async tempPath(): Promise<string> {
    const dir = join(this.root, "tmp");
    try {
      await mkdir(dir, { recursive: true });
      await mkdir(join(this.root, "sha256"), { recursive: true });
    } catch (err) {
      throw ioError(`the blob store ${this.root}`, err);
    }
    await this.sweep();
    return join(dir, `${ownerTag()}${randomBytes(6).toString("hex")}`);
  }

  /** Removes what killed writers left in tmp/ (once per store; util/temp-names.ts). */
  async sweep(): Promise<void> {
    if (this.swept) return;
    this.swept = true;
    await sweepStale(join(this.root, "tmp"), "");
  }

  /** Moves a completed temporary file into place under its digest. */
  async commit(tempPath: string, digest: Digest): Promise<void> {
    try {
      await rename(tempPath, this.pathOf(digest));
    } catch (err) {
      await rm(tempPath, { force: true });
      throw ioError(`the blob store ${this.root}`, err);
    }
  }
}

/** What a layer blob in a store is: enough to make a Layer over it without reading it. */
export interface StoredLayerBlob {
  digest: Digest;
  diffId: Digest;
  size: number;
  compression: Compression;
}

/**
 * A Layer over a layer blob of the cache's layer index (packed here, or downloaded and
 * checked whole): reading it checks its digest; its content was checked when it entered.
 */
export function storedLayer(store: BlobStore, blob: StoredLayerBlob, describe: string): Layer {
  return makeLayer({ ...blob, openRaw: () => store.open(blob.digest), describe, contentChecked: true });
}
