import { setTimeout as sleep } from "node:timers/promises";
import { Readable } from "node:stream";
import { GantryError, RegistryError, AbortedError } from "../../model/errors.js";

/**
 * One HTTP exchange with a registry over Node's fetch, below authentication:
 * bounded retries with backoff for idempotent requests, redirects followed by hand so that
 * credentials never travel to another origin (blob GETs redirect to storage), and network
 * failures turned into errors that name the registry.
 */
export type HttpMethod = "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE";

export interface HttpRequest {
  readonly method: HttpMethod;
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** A Buffer can be sent again; a stream cannot, so a request with one is never retried. */
  readonly body?: Buffer | Readable;
  /** Whether sending it twice is harmless: only then are 429, 5xx and connection resets retried. */
  readonly idempotent: boolean;
  /** The Authorization header value, sent to the request's own origin only. */
  readonly authorization?: string;
  readonly signal?: AbortSignal;
  /** How to wait before a retry; default a real sleep. Tests pass one that records and returns. */
  readonly retryWait?: RetryWait;
}

/** Waits `ms` milliseconds (or until `signal` aborts, then rejects). */
export type RetryWait = (ms: number, signal: AbortSignal | undefined) => Promise<void>;

export const MAX_TRIES = 3;
const MAX_REDIRECTS = 5;
const BACKOFF_BASE_MS = 250;
const MAX_RETRY_AFTER_MS = 10_000;
const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const RETRYABLE_NETWORK_CODES = new Set([
  "ECONNRESET", "EPIPE", "ETIMEDOUT", "ECONNABORTED", "EAI_AGAIN",
  "UND_ERR_SOCKET", "UND_ERR_CONNECT_TIMEOUT", "UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT", "UND_ERR_CLOSED",
]);

export function isRetryableStatus(status: number): boolean {
  return RETRYABLE_STATUS.has(status);
}

/** Sends `req`, retrying what may be retried; returns the final response whatever its status. */
export async function send(req: HttpRequest, registry: string): Promise<Response> {
  const replayable = req.idempotent && !(req.body !== undefined && !Buffer.isBuffer(req.body));
  for (let attempt = 1; ; attempt++) {
    const last = !replayable || attempt >= MAX_TRIES;
    let response: Response;
    try {
      response = await sendFollowingRedirects(req, registry);
    } catch (err) {
      if (last || !(err instanceof GantryError) || !err.retryable) throw err;
      await backoff(attempt, undefined, req);
      continue;
    }
    if (last || !isRetryableStatus(response.status)) return response;
    await discard(response);
    await backoff(attempt, response.headers.get("retry-after"), req);
  }
}

async function sendFollowingRedirects(req: HttpRequest, registry: string): Promise<Response> {
  const origin = new URL(req.url).origin;
  let url = req.url;
  for (let hop = 0; ; hop++) {
    const sameOrigin = new URL(url).origin === origin;
    const headers: Record<string, string> = { ...req.headers };
    if (req.authorization !== undefined && sameOrigin) headers["authorization"] = req.authorization;
    const response = await fetchOnce(url, hop === 0 ? req : { ...req, body: undefined }, headers, registry);
    const location = response.headers.get("location");
    const followable = (req.method === "GET" || req.method === "HEAD") && isRedirect(response.status) && location;
    if (!followable) return response;
    if (hop >= MAX_REDIRECTS) {
      await discard(response);
      throw new RegistryError(`${registry} redirected ${req.method} ${pathOf(req.url)} more than ${MAX_REDIRECTS} times; the registry is misconfigured`);
    }
    await discard(response);
    url = new URL(location, url).toString();
  }
}

async function fetchOnce(url: string, req: Omit<HttpRequest, "body"> & { body?: Buffer | Readable | undefined }, headers: Record<string, string>, registry: string): Promise<Response> {
  const init: RequestInit & { duplex?: "half" } = { method: req.method, headers, redirect: "manual" };
  if (req.body !== undefined) {
    if (Buffer.isBuffer(req.body)) {
      init.body = req.body;
    } else {
      // A web stream is sent as it is; a Node stream would be re-chunked and copied by fetch.
      init.body = Readable.toWeb(req.body) as unknown as ReadableStream<Uint8Array>;
      init.duplex = "half";
    }
  }
  if (req.signal) init.signal = req.signal;
  try {
    return await fetch(url, init);
  } catch (err) {
    throw networkError(err, url, registry, req.signal);
  }
}

/** Maps a fetch rejection to an error that names the registry and says what to do. */
export function networkError(err: unknown, url: string, registry: string, signal?: AbortSignal): GantryError {
  if (signal?.aborted) return new AbortedError(signal.reason);
  // A request body that failed (a layer that did not match its digest) surfaces as fetch's cause.
  const own = gantryCause(err);
  if (own) return own;
  const code = errorCode(err);
  const where = new URL(url).origin;
  if (code === "ECONNREFUSED") {
    return new RegistryError(`cannot reach ${registry}: the connection to ${where} was refused; check that the registry is running and the address is right`, { cause: err });
  }
  if (code === "ENOTFOUND") {
    return new RegistryError(`cannot reach ${registry}: the host name does not resolve; check the registry's name`, { cause: err });
  }
  if (code !== undefined && /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) {
    return new RegistryError(`the TLS connection to ${registry} failed (${code}); if the registry speaks plain HTTP pass --tls-verify=false, for a private CA set NODE_EXTRA_CA_CERTS`, { cause: err });
  }
  const retryable = code !== undefined && RETRYABLE_NETWORK_CODES.has(code);
  const reason = code ?? (err instanceof Error ? (causeOf(err)?.message ?? err.message) : String(err));
  return new RegistryError(`cannot reach ${registry}: the connection to ${where} failed (${reason}); try again`, { cause: err, retryable });
}

function gantryCause(err: unknown): GantryError | undefined {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 4; e = causeOf(e), depth++) {
    if (e instanceof GantryError) return e;
  }
  return undefined;
}

function errorCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 4; e = causeOf(e), depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
  }
  return undefined;
}

function causeOf(err: unknown): Error | undefined {
  const cause = (err as { cause?: unknown }).cause;
  return cause instanceof Error ? cause : undefined;
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

/** Releases a response's connection without reading what nobody needs. */
export async function discard(response: Response): Promise<void> {
  try {
    await response.body?.cancel();
  } catch {
    /* the body was already consumed or the connection is gone: nothing to release */
  }
}

const sleepFor: RetryWait = async (ms, signal) => {
  await sleep(ms, undefined, signal ? { signal } : undefined);
};

async function backoff(attempt: number, retryAfter: string | null | undefined, req: HttpRequest): Promise<void> {
  const asked = retryAfter ? Number(retryAfter) * 1000 : NaN;
  const delay = Number.isFinite(asked) && asked >= 0
    ? Math.min(asked, MAX_RETRY_AFTER_MS)
    : BACKOFF_BASE_MS * 3 ** (attempt - 1) * (0.75 + Math.random() / 2);
  try {
    await (req.retryWait ?? sleepFor)(delay, req.signal);
  } catch (err) {
    throw new AbortedError(err);
  }
}

export function pathOf(url: string): string {
  const u = new URL(url);
  return u.pathname;
}
