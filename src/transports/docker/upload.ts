import { Readable } from "node:stream";
import type { Digest } from "../../model/digest.js";
import { DigestMismatchError, GantryError, RegistryError } from "../../model/errors.js";
import type { Scope } from "./auth.js";
import { hintsFrom, type BlobLocationBook } from "./blob-locations.js";
import { ByteCursor } from "./byte-cursor.js";
import type { RegistryClient } from "./client.js";
import { registryFailure } from "./failure.js";
import { discard } from "./http.js";
import type { BlobLocation } from "./origin.js";
import type { StepRetries } from "./retry.js";
import type { RegistryResponse } from "./http-exchange.js";

/**
 * Putting one blob into a repository, the cheapest way that works: nothing if it is there
 * (HEAD), a cross-repository mount if a sibling repository of the same registry is known to
 * hold it (from this process, or from the location book), else an upload: monolithic (POST,
 * then PUT with the bytes) up to `chunkThreshold`, chunked PATCHes above.
 *
 * The whole blob is one step with one retry budget. When a PATCH or PUT fails (a retryable
 * status, a dropped or stalled connection, a session the registry no longer knows), the
 * upload waits as the step's policy says (Retry-After honoured) and goes on: the same
 * request again when the registry answered it, else it checks whether the blob landed after
 * all (its answer lost), asks the session how much it holds (`Range`) and goes on from
 * there, or opens a new session when that cannot be told (see `send`).
 */
export interface BlobToPush {
  readonly digest: Digest;
  readonly size: number;
  /** Opens the bytes (verified against the digest); called again when an upload resumes or restarts. */
  readonly open: (signal?: AbortSignal) => Promise<Readable>;
  /** Repositories of the same or other registries known, in this process, to hold it. */
  readonly locations: readonly BlobLocation[];
  /** Names the blob in errors: "layer 2 of app:1". */
  readonly describe: string;
}

/** How pushBlob uploads, and where it learns and records blob locations. */
export interface UploadSettings {
  /** Blobs larger than this go up in chunks. */
  readonly chunkThreshold: number;
  /** Bytes per PATCH, streamed from the source (nothing is held in memory). */
  readonly chunkSize: number;
  /** Where blobs were seen before this process; told what the push learns. */
  readonly book?: BlobLocationBook | undefined;
}

/** Blobs above this many bytes (16 MiB) are uploaded in chunks, by default. */
export const DEFAULT_CHUNK_THRESHOLD = 16 * 1024 * 1024;
/** Bytes per chunk (16 MiB), by default. */
export const DEFAULT_CHUNK_SIZE = 16 * 1024 * 1024;

/** What pushBlob did: nothing (the blob was there), a mount, or an upload. */
export type BlobOutcome = "skipped" | "mounted" | "uploaded";

const OCTET_STREAM = "application/octet-stream";
/** Answers about an upload session that a new try can mend: malformed state, unknown session, wrong offset. */
const SESSION_FAULTS = new Set([400, 404, 416]);

/**
 * Puts `blob` into `repository`, the cheapest way (see above), and records where it now is. Throws
 * RegistryError or AuthError when the registry refuses, DigestMismatchError when it stores other bytes.
 */
export async function pushBlob(client: RegistryClient, repository: string, blob: BlobToPush, settings: UploadSettings): Promise<BlobOutcome> {
  const book = hintsFrom(settings.book);
  const registry = client.registry;
  const known = [
    ...blob.locations.filter((l) => l.registry === registry).map((l) => l.repository),
    ...await book.repositoriesWith(registry, blob.digest),
  ];
  const mountFrom = known.find((r) => r !== repository);
  const upload = new BlobUpload(client, repository, blob, settings, mountFrom);
  const outcome = await upload.push();
  await book.remember(registry, repository, blob.digest);
  if (upload.mountDeclined && mountFrom !== undefined) await book.forget(registry, mountFrom, blob.digest);
  return outcome;
}

class BlobUpload {
  private readonly scopes: Scope[];
  private readonly retries: StepRetries;
  private readonly chunked: boolean;
  /** The registry answered the mount with an upload session: `mountFrom` lacks the blob. */
  mountDeclined = false;
  /** The upload session's latest Location (a registry may refuse an earlier one). */
  private location = "";
  /** Bytes the session holds, as far as this upload knows. */
  private held = 0;

  constructor(
    private readonly client: RegistryClient,
    private readonly repository: string,
    private readonly blob: BlobToPush,
    private readonly settings: UploadSettings,
    private readonly mountFrom: string | undefined,
  ) {
    this.scopes = [{ repository, actions: ["pull", "push"] }];
    if (mountFrom !== undefined) this.scopes.push({ repository: mountFrom, actions: ["pull"] });
    this.retries = client.step(`upload ${blob.describe} to ${repository}`);
    this.chunked = blob.size > settings.chunkThreshold;
  }

  async push(): Promise<BlobOutcome> {
    if (await this.exists()) return "skipped";
    const started = await this.start(this.mountFrom);
    if (started === "mounted") return "mounted";
    this.mountDeclined = this.mountFrom !== undefined;
    await this.send(started);
    return "uploaded";
  }

  /** Whether the repository holds the blob (HEAD). */
  private async exists(): Promise<boolean> {
    const response = await this.client.request({
      method: "HEAD", url: `/v2/${this.repository}/blobs/${this.blob.digest}`, scopes: this.scopes, idempotent: true, retries: this.retries,
    });
    if (!response.ok && response.status !== 404) throw await registryFailure(response, this.context("check for"));
    await discard(response);
    return response.ok;
  }

  /**
   * Mounts the blob from `mountFrom`, or opens an upload session and returns its Location.
   * Sending it twice is harmless (at worst a session nobody uses, which the registry purges).
   */
  private async start(mountFrom: string | undefined): Promise<"mounted" | string> {
    const query = mountFrom !== undefined
      ? `?mount=${encodeURIComponent(this.blob.digest)}&from=${encodeURIComponent(mountFrom)}`
      : "";
    const response = await this.client.request({
      method: "POST", url: `/v2/${this.repository}/blobs/uploads/${query}`, scopes: this.scopes,
      headers: { "content-length": "0" }, body: Buffer.alloc(0), idempotent: true, retries: this.retries,
    });
    // 201: mounted. 202: the registry could not mount and opened an upload instead.
    const mounted = response.status === 201 && mountFrom !== undefined;
    if (!mounted && response.status !== 202) throw await registryFailure(response, this.context("start an upload of"));
    await discard(response);
    return mounted ? "mounted" : this.locationOf(response);
  }

  /**
   * Sends the bytes into the session opened at `opened` and commits them, mending faults as
   * the step allows. When the registry answered a failure it did not act on (503, 429, …),
   * the same request goes again, from the same offset, with nothing asked in between: a
   * fixed cycle of requests could meet a fault that strikes every Nth request at the same
   * point every time. Without an answer (a dropped or stalled connection), or with an answer
   * about the session (400, 404, 416), the upload asks: the blob may be in already (HEAD),
   * else the session says how much it holds (Range) or a new session is opened.
   */
  private async send(opened: string): Promise<void> {
    this.location = opened;
    this.held = 0;
    for (;;) {
      try {
        if (this.held === 0 && !this.chunked) await this.sendWhole(this.location);
        else await this.sendFrom();
        return;
      } catch (err) {
        if (!mendable(err) || !(await this.retries.retry(err.retryAfterMs))) throw err;
        if (refusedAsIs(err)) continue;
      }
      if (await this.exists()) return;
      const resume = await this.uploadedSoFar(this.location);
      if (resume) {
        ({ size: this.held, location: this.location } = resume);
      } else {
        this.held = 0;
        this.location = await this.start(undefined) as string;
      }
    }
  }

  private async sendWhole(location: string): Promise<void> {
    const body = await this.blob.open(this.client.signal);
    try {
      const response = await this.client.request({
        method: "PUT", url: withDigest(this.client.url(location), this.blob.digest), scopes: this.scopes,
        headers: { "content-type": OCTET_STREAM, "content-length": String(this.blob.size) },
        body, idempotent: false, retries: this.retries,
      });
      await this.expectCommitted(response);
    } finally {
      body.destroy();
    }
  }

  /**
   * PATCHes the blob from byte `held` in spans of `chunkSize`, each streamed from the source
   * as it is read (the first `held` bytes are read and passed over), then commits it. The
   * commit comes only after the source has ended, which is when it checks its digest.
   */
  private async sendFrom(): Promise<void> {
    const source = await this.blob.open(this.client.signal);
    const cursor = new ByteCursor(source, this.blob.describe);
    try {
      await cursor.skip(this.held);
      while (this.held < this.blob.size) {
        const length = Math.min(this.settings.chunkSize, this.blob.size - this.held);
        this.location = await this.patch(this.location, cursor.take(length), this.held, length);
        this.held += length;
        this.retries.progress();
      }
      await cursor.end();
    } finally {
      source.destroy();
    }
    const response = await this.client.request({
      method: "PUT", url: withDigest(this.client.url(this.location), this.blob.digest), scopes: this.scopes,
      headers: { "content-length": "0" }, body: Buffer.alloc(0), idempotent: false, retries: this.retries,
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
      body: Readable.from(part), idempotent: false, retries: this.retries,
    });
    if (response.status !== 202) throw await registryFailure(response, this.context("upload a chunk of"));
    await discard(response);
    return this.locationOf(response);
  }

  /**
   * `GET` on the session: its `Range: 0-LAST` says how many bytes the registry holds.
   * Undefined when that cannot be told, and the upload must start again.
   */
  private async uploadedSoFar(location: string): Promise<{ size: number; location: string } | undefined> {
    let response: RegistryResponse;
    try {
      response = await this.client.request({ method: "GET", url: location, scopes: this.scopes, idempotent: true, retries: this.retries });
    } catch (err) {
      if (err instanceof GantryError && !err.retryable) throw err;
      return undefined;
    }
    await discard(response);
    if (response.status !== 204 && response.status !== 200) return undefined;
    const range = /^(?:bytes=)?0-(\d+)$/.exec(response.headers.get("range") ?? "");
    // No Range, or "0-0", which distribution says both for nothing and for one byte: resuming
    // at 0 on a session that holds a byte is refused (416) for good; a fresh session loses nothing.
    if (!range || Number(range[1]) === 0) return undefined;
    const size = Number(range[1]) + 1;
    if (size > this.blob.size) return undefined;
    return { size, location: response.headers.get("location") ?? location };
  }

  private async expectCommitted(response: RegistryResponse): Promise<void> {
    if (response.status !== 201 && response.status !== 204) {
      throw await registryFailure(response, this.context("store"));
    }
    await discard(response);
    const stored = response.headers.get("docker-content-digest");
    if (stored && stored !== this.blob.digest) {
      throw new DigestMismatchError(`${this.client.registry} stored ${this.blob.describe} as ${stored}, not ${this.blob.digest}; the upload was altered on the way`);
    }
    this.retries.progress();
  }

  private locationOf(response: RegistryResponse): string {
    const location = response.headers.get("location");
    if (!location) {
      throw new RegistryError(`${this.client.registry} opened an upload for ${this.blob.describe} in ${this.repository} without a Location header; the registry is not speaking the distribution API`);
    }
    return location;
  }

  private context(action: string): { registry: string; repository: string; action: string; retries: StepRetries } {
    return { registry: this.client.registry, repository: this.repository, action: `${action} ${this.blob.describe}`, retries: this.retries };
  }
}

/** A failure of the data phase that another try may mend (see SESSION_FAULTS); never one of the source's. */
function mendable(err: unknown): err is GantryError & { retryAfterMs?: number } {
  if (!(err instanceof GantryError)) return false;
  if (err.retryable) return true;
  return err instanceof RegistryError && err.status !== undefined && SESSION_FAULTS.has(err.status);
}

/** A failure the registry answered and did not act on: the same request may simply go again. */
function refusedAsIs(err: GantryError): boolean {
  return err instanceof RegistryError && err.status !== undefined && !SESSION_FAULTS.has(err.status);
}

function withDigest(location: string, digest: Digest): string {
  const url = new URL(location);
  url.searchParams.set("digest", digest);
  return url.toString();
}
