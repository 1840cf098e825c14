import { Readable } from "node:stream";
import type { Digest } from "../../model/digest.js";
import { DigestMismatchError, GantryError, RegistryError } from "../../model/errors.js";
import type { Scope } from "./auth.js";
import type { RegistryClient } from "./client.js";
import { registryFailure } from "./failure.js";
import { MAX_TRIES, discard } from "./http.js";
import type { BlobLocation } from "./origin.js";
import { ByteCursor } from "./byte-cursor.js";

/**
 * Putting one blob into a repository, the cheapest way that works: nothing if it is there
 * (HEAD), a cross-repository mount if a sibling repository holds it, else an upload —
 * monolithic (POST, then PUT with the bytes) up to `chunkThreshold`, chunked PATCHes above,
 * where a failed chunk resumes from the offset the registry reports in its `Range` header.
 */
export interface BlobToPush {
  readonly digest: Digest;
  readonly size: number;
  /** Opens the bytes (verified against the digest); called again when an upload restarts. */
  readonly open: (signal?: AbortSignal) => Promise<Readable>;
  /** Repositories of the same or other registries known to hold it. */
  readonly locations: readonly BlobLocation[];
  /** Names the blob in errors: "layer 2 of app:1". */
  readonly describe: string;
}

export interface UploadSettings {
  /** Blobs larger than this go up in chunks. */
  readonly chunkThreshold: number;
  /** Bytes per PATCH, streamed from the source (nothing is held in memory). */
  readonly chunkSize: number;
}

export const DEFAULT_CHUNK_THRESHOLD = 16 * 1024 * 1024;
export const DEFAULT_CHUNK_SIZE = 16 * 1024 * 1024;

export type BlobOutcome = "skipped" | "mounted" | "uploaded";

const OCTET_STREAM = "application/octet-stream";

export async function pushBlob(client: RegistryClient, repository: string, blob: BlobToPush, settings: UploadSettings): Promise<BlobOutcome> {
  const upload = new BlobUpload(client, repository, blob, settings);
  if (await upload.exists()) return "skipped";
  for (let attempt = 1; ; attempt++) {
    try {
      const started = await upload.start();
      if (started === "mounted") return "mounted";
      await (blob.size > settings.chunkThreshold ? upload.sendChunked(started) : upload.sendWhole(started));
      return "uploaded";
    } catch (err) {
      // A restart re-reads the blob from its source; only transient failures earn one.
      if (!(err instanceof GantryError && err.retryable) || attempt >= MAX_TRIES) throw err;
    }
  }
}

class BlobUpload {
  private readonly scopes: Scope[];
  private readonly mountFrom: BlobLocation | undefined;

  constructor(
    private readonly client: RegistryClient,
    private readonly repository: string,
    private readonly blob: BlobToPush,
    private readonly settings: UploadSettings,
  ) {
    this.mountFrom = blob.locations.find((l) => l.registry === client.registry && l.repository !== repository);
    this.scopes = [{ repository, actions: ["pull", "push"] }];
    if (this.mountFrom) this.scopes.push({ repository: this.mountFrom.repository, actions: ["pull"] });
  }

  async exists(): Promise<boolean> {
    const response = await this.client.request({
      method: "HEAD", url: `/v2/${this.repository}/blobs/${this.blob.digest}`, scopes: this.scopes, idempotent: true,
    });
    await discard(response);
    if (response.ok) return true;
    if (response.status === 404) return false;
    throw await registryFailure(response, this.context("check for"));
  }

  /** Mounts the blob, or opens an upload session and returns its Location. */
  async start(): Promise<"mounted" | string> {
    const query = this.mountFrom
      ? `?mount=${encodeURIComponent(this.blob.digest)}&from=${encodeURIComponent(this.mountFrom.repository)}`
      : "";
    const response = await this.client.request({
      method: "POST", url: `/v2/${this.repository}/blobs/uploads/${query}`, scopes: this.scopes,
      headers: { "content-length": "0" }, idempotent: false,
    });
    await discard(response);
    // 201: mounted. 202: the registry could not mount and opened an upload instead.
    if (response.status === 201 && this.mountFrom) return "mounted";
    if (response.status === 202) return this.location(response);
    throw await registryFailure(response, this.context("start an upload of"));
  }

  async sendWhole(location: string): Promise<void> {
    const body = await this.blob.open(this.client.signal);
    try {
      const response = await this.client.request({
        method: "PUT", url: withDigest(this.client.url(location), this.blob.digest), scopes: this.scopes,
        headers: { "content-type": OCTET_STREAM, "content-length": String(this.blob.size) },
        body, idempotent: false,
      });
      await this.expectCommitted(response);
    } finally {
      body.destroy();
    }
  }

  /**
   * PATCHes the blob in spans of `chunkSize`, each streamed from the source as it is read.
   * After a failed span, the registry's `Range` says how much it holds: the source is opened
   * again, that much skipped, and the upload goes on. The blob is committed only after the
   * source has ended, which is when it checks its digest.
   */
  async sendChunked(location: string): Promise<void> {
    let held = 0;
    for (let attempt = 1; ; attempt++) {
      const source = await this.blob.open(this.client.signal);
      const cursor = new ByteCursor(source, this.blob.describe);
      try {
        await cursor.skip(held);
        while (held < this.blob.size) {
          const length = Math.min(this.settings.chunkSize, this.blob.size - held);
          location = await this.patch(location, cursor.take(length), held, length);
          held += length;
        }
        await cursor.end();
        break;
      } catch (err) {
        if (!(err instanceof GantryError) || !err.retryable || attempt >= MAX_TRIES) throw err;
        const resume = await this.uploadedSoFar(location);
        if (!resume || resume.size > this.blob.size) {
          throw new RegistryError(`${this.client.registry} lost the upload of ${this.blob.describe} to ${this.repository}; starting it again`, { cause: err, retryable: true });
        }
        held = resume.size;
        location = resume.location;
      } finally {
        source.destroy();
      }
    }
    const response = await this.client.request({
      method: "PUT", url: withDigest(this.client.url(location), this.blob.digest), scopes: this.scopes,
      headers: { "content-length": "0" }, body: Buffer.alloc(0), idempotent: false,
    });
    await this.expectCommitted(response);
  }

  /** Sends bytes `start`..`start + length - 1` of the blob; returns the session's next Location. */
  private async patch(location: string, part: AsyncIterable<Buffer>, start: number, length: number): Promise<string> {
    const response = await this.client.request({
      method: "PATCH", url: location, scopes: this.scopes,
      headers: {
        "content-type": OCTET_STREAM,
        "content-range": `${start}-${start + length - 1}`,
        "content-length": String(length),
      },
      body: Readable.from(part), idempotent: false,
    });
    if (response.status !== 202) throw await registryFailure(response, this.context("upload a chunk of"));
    await discard(response);
    return this.location(response);
  }

  /**
   * `GET` on the session: its `Range: 0-LAST` says how many bytes the registry holds.
   * Undefined when that cannot be told, and the upload must start again.
   */
  private async uploadedSoFar(location: string): Promise<{ size: number; location: string } | undefined> {
    let response: Response;
    try {
      response = await this.client.request({ method: "GET", url: location, scopes: this.scopes, idempotent: true });
    } catch {
      return undefined;
    }
    await discard(response);
    if (response.status !== 204 && response.status !== 200) return undefined;
    const range = /^(?:bytes=)?0-(\d+)$/.exec(response.headers.get("range") ?? "");
    // No Range, or "0-0", which distribution says both for nothing and for one byte: resuming
    // at 0 on a session that holds a byte is refused (416) for good; a fresh session loses nothing.
    if (!range || Number(range[1]) === 0) return undefined;
    return { size: Number(range[1]) + 1, location: response.headers.get("location") ?? location };
  }

  private async expectCommitted(response: Response): Promise<void> {
    await discard(response);
    if (response.status !== 201 && response.status !== 204) {
      throw await registryFailure(response, this.context("store"));
    }
    const stored = response.headers.get("docker-content-digest");
    if (stored && stored !== this.blob.digest) {
      throw new DigestMismatchError(`${this.client.registry} stored ${this.blob.describe} as ${stored}, not ${this.blob.digest}; the upload was altered on the way`);
    }
  }

  private location(response: Response): string {
    const location = response.headers.get("location");
    if (!location) {
      throw new RegistryError(`${this.client.registry} opened an upload for ${this.blob.describe} in ${this.repository} without a Location header; the registry is not speaking the distribution API`);
    }
    return location;
  }

  private context(action: string): { registry: string; repository: string; action: string } {
    return { registry: this.client.registry, repository: this.repository, action: `${action} ${this.blob.describe}` };
  }
}

function withDigest(location: string, digest: Digest): string {
  const url = new URL(location);
  url.searchParams.set("digest", digest);
  return url.toString();
}
