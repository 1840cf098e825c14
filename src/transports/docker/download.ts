import { Readable } from "node:stream";
import { AbortedError, DigestMismatchError, GantryError, RegistryError } from "../../model/errors.js";
import { bodyChunks } from "./body.js";
import type { RegistryClient } from "./client.js";
import { registryFailure } from "./failure.js";
import { discard, errorCode } from "./http.js";
import type { StepRetries } from "./retry.js";
import type { RegistryResponse } from "./http-exchange.js";

/**
 * A blob's bytes as one stream, however many answers they take. A connection dropped, a
 * body cut short or a body that stalls is resumed with `Range: bytes=N-` where the
 * registry (or the storage it redirects to) honours ranges (206 from byte N), and
 * restarted where it does not (a 200: its first N bytes are passed over). Each answer's
 * Content-Length must be what is left of the blob, or the answer is a fault; the same wrong
 * length twice in a row is the registry's content, and an error. Faults draw on the step's
 * retries; progress (any byte received) starts a new run.
 *
 * Nothing here trusts the bytes: the caller verifies the whole stream against the digest
 * and size, so a resumption that joined the wrong bytes fails there, never silently.
 */
export interface BlobToFetch {
  readonly repository: string;
  readonly digest: string;
  readonly size: number;
  /** Names the blob in errors: "the blob sha256:… of 127.0.0.1:5000/app:1". */
  readonly describe: string;
}

interface Answer {
  readonly response: RegistryResponse;
  /** Bytes at the start of the body already received from an earlier answer (a 200 to a range request). */
  readonly skip: number;
}

const CONNECTION_DROPS = new Set(["ECONNRESET", "EPIPE", "ERR_STREAM_PREMATURE_CLOSE"]);

/** Requests the blob (a 404 or a refusal throws here, before any byte) and returns its bytes as they come. */
export async function downloadBlob(client: RegistryClient, blob: BlobToFetch, retries: StepRetries, signal?: AbortSignal): Promise<Readable> {
  const download = new Download(client, blob, retries, signal);
  const first = await download.open(0);
  return Readable.from(download.bytes(first), { objectMode: false });
}

class Download {
  /** The status and Content-Length of the last answer whose length was wrong. */
  private wrongLength: string | undefined;

  constructor(
    private readonly client: RegistryClient,
    private readonly blob: BlobToFetch,
    private readonly retries: StepRetries,
    private readonly signal: AbortSignal | undefined,
  ) {}

  /** An answer carrying the blob from byte `offset`, faults retried while the step allows. */
  async open(offset: number): Promise<Answer> {
    for (;;) {
      try {
        return await this.request(offset);
      } catch (err) {
        if (!this.transient(err) || !(await this.retries.retry())) throw this.reported(err, offset);
      }
    }
  }

  async *bytes(first: Answer): AsyncGenerator<Buffer> {
    let answer = first;
    let received = 0;
    for (;;) {
      let skip = answer.skip;
      try {
        for await (const chunk of bodyChunks(answer.response, this.retries)) {
          const piece = skip > 0 ? chunk.subarray(Math.min(skip, chunk.length)) : chunk;
          skip -= chunk.length - piece.length;
          if (piece.length === 0) continue;
          received += piece.length;
          this.retries.progress();
          yield piece;
        }
        // More than the blob's size is for the caller's verification to refuse.
        if (received >= this.blob.size) return;
        throw this.fault(`the answer ended after ${received} of ${this.blob.size} bytes`);
      } catch (err) {
        if (!this.transient(err) || !(await this.retries.retry())) throw this.reported(err, received);
      }
      answer = await this.open(received);
    }
  }

  private async request(offset: number): Promise<Answer> {
    const { repository, digest, size } = this.blob;
    const response = await this.client.request({
      method: "GET",
      url: `/v2/${repository}/blobs/${digest}`,
      scopes: [{ repository, actions: ["pull"] }],
      // The bytes as stored: an answer compressed on the way (Content-Encoding) would not match the digest.
      headers: { "accept-encoding": "identity", ...(offset > 0 ? { range: `bytes=${offset}-` } : {}) },
      idempotent: true,
      retries: this.retries,
      ...(this.signal ? { signal: this.signal } : {}),
    });
    if (!response.ok || !response.body) {
      throw await registryFailure(response, {
        registry: this.client.registry, repository, action: `fetch ${this.blob.describe}`, retries: this.retries,
        missing: `${this.blob.describe} (blob ${digest})`,
      });
    }
    const resumed = response.status === 206;
    if (resumed) {
      const start = /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(response.headers.get("content-range") ?? "")?.[1];
      if (start === undefined || Number(start) !== offset) {
        await discard(response);
        throw this.fault(`it answered a request for bytes ${offset}- with the range ${response.headers.get("content-range") ?? "(none)"}`);
      }
    }
    const expected = resumed ? size - offset : size;
    const announced = response.headers.get("content-length");
    const wrongLength = announced !== null && Number(announced) !== expected ? `${response.status} ${announced}` : undefined;
    const again = wrongLength !== undefined && wrongLength === this.wrongLength;
    this.wrongLength = wrongLength;
    if (again) {
      await discard(response);
      throw new DigestMismatchError(`${this.client.registry} serves ${this.blob.describe} as ${announced} bytes where ${expected} were expected, answer after answer; the registry holds other bytes under that digest`);
    }
    if (wrongLength !== undefined) {
      // Once is a fault on the way; the same wrong length twice is what the registry holds.
      await discard(response);
      throw this.fault(`it announced ${announced} bytes where ${expected} were expected`);
    }
    return { response, skip: resumed ? 0 : offset };
  }

  private transient(err: unknown): boolean {
    if (this.aborted()) return false;
    if (err instanceof GantryError) return err.retryable;
    const code = errorCode(err);
    return code !== undefined && CONNECTION_DROPS.has(code);
  }

  /** The error to report: an abort as such, our own errors as they are, a dropped connection in words. */
  private reported(err: unknown, received: number): unknown {
    if (this.aborted()) return new AbortedError(this.signal?.aborted ? this.signal.reason : this.client.signal?.reason);
    if (err instanceof GantryError || !this.transient(err)) return err;
    const reason = errorCode(err) ?? (err as Error).message;
    return this.fault(`the download was cut off after ${received} of ${this.blob.size} bytes (${reason})`, err);
  }

  private aborted(): boolean {
    return (this.signal?.aborted ?? false) || (this.client.signal?.aborted ?? false);
  }

  private fault(what: string, cause?: unknown): RegistryError {
    return new RegistryError(`${this.client.registry} failed to fetch ${this.blob.describe}: ${what}${this.retries.persistence}; try again`, { retryable: true, cause });
  }
}
