import { Readable } from "node:stream";
import { GantryError, RegistryError, AbortedError } from "../../model/errors.js";
import { stalledError } from "./body.js";
import { retryAfterMs, type StepRetries } from "./retry.js";
import { exchange, type RegistryResponse } from "./http-exchange.js";

/**
 * One HTTP exchange with a registry (http-exchange.ts), below authentication: retries of
 * idempotent requests as the step's policy allows (Retry-After honoured), a stall timeout
 * on the answer's headers, redirects followed by hand so that credentials never travel to
 * another origin (blob GETs redirect to storage), and network failures turned into errors
 * that name the registry and the step.
 */
export type HttpMethod = "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE";

/** One request as sent, below authentication. */
export interface HttpRequest {
  readonly method: HttpMethod;
  /** An absolute URL. */
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** A Buffer can be sent again; a stream cannot, so a request with one is never retried here. */
  readonly body?: Buffer | Readable;
  /** Whether sending it twice is harmless: only then are 408, 429, 5xx and dropped connections retried here. */
  readonly idempotent: boolean;
  /** The Authorization header value, sent to the request's own origin only. */
  readonly authorization?: string;
  readonly signal?: AbortSignal;
  /** The step the request belongs to: its retry budget, its stall timeout, its name in errors. */
  readonly retries: StepRetries;
  /** HTTPS without checking the server's certificate (`--tls-verify=false`), redirects included. */
  readonly insecure?: boolean;
}

const MAX_REDIRECTS = 5;
const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const RETRYABLE_NETWORK_CODES = new Set(["ECONNRESET", "EPIPE", "ETIMEDOUT", "ECONNABORTED", "EAI_AGAIN"]);

/** Whether a status is worth trying again: 408, 429, 500, 502, 503, 504. */
export function isRetryableStatus(status: number): boolean {
  return RETRYABLE_STATUS.has(status);
}

/**
 * Sends `req`, retrying what may be retried while the step allows; returns the final
 * response whatever its status (the caller words the failure), or throws the last
 * network error.
 */
export async function send(req: HttpRequest, registry: string): Promise<RegistryResponse> {
  const replayable = req.idempotent && !(req.body !== undefined && !Buffer.isBuffer(req.body));
  for (;;) {
    let response: RegistryResponse;
    try {
      response = await sendFollowingRedirects(req, registry);
    } catch (err) {
      if (!replayable || !(err instanceof GantryError) || !err.retryable) throw err;
      if (!(await req.retries.retry())) throw err;
      continue;
    }
    if (!isRetryableStatus(response.status)) {
      req.retries.answered();
      return response;
    }
    if (!replayable) return response;
    const delay = req.retries.next(retryAfterMs(response.headers.get("retry-after")));
    if (delay === undefined) return response;
    await discard(response);
    await req.retries.wait(delay);
  }
}

async function sendFollowingRedirects(req: HttpRequest, registry: string): Promise<RegistryResponse> {
  const origin = new URL(req.url).origin;
  let url = req.url;
  for (let hop = 0; ; hop++) {
    const sameOrigin = new URL(url).origin === origin;
    const headers: Record<string, string> = { ...req.headers };
    if (req.authorization !== undefined && sameOrigin) headers["authorization"] = req.authorization;
    const response = await sendOnce(url, hop === 0 ? req : { ...req, body: undefined }, headers, registry);
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

/**
 * One exchange, watched for stalls: while a body goes up, each piece of it must be taken
 * within the stall timeout (a registry that stops reading is abandoned), and after it the
 * answer's headers must come within it too.
 */
async function sendOnce(url: string, req: Omit<HttpRequest, "body"> & { body?: Buffer | Readable | undefined }, headers: Record<string, string>, registry: string): Promise<RegistryResponse> {
  const stall = new AbortController();
  const stallMs = req.retries.policy.stallMs;
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => stall.abort(stalledError(req.retries, stallMs, url)), stallMs);
  };
  const signal = req.signal ? AbortSignal.any([req.signal, stall.signal]) : stall.signal;
  arm();
  try {
    return await exchange({ method: req.method, url, headers, body: req.body, signal, onSent: arm, insecure: req.insecure === true });
  } catch (err) {
    throw networkError(err, url, registry, req.signal, req.retries);
  } finally {
    clearTimeout(timer);
  }
}

/** Maps a failed exchange to an error that names the registry (and the step) and says what to do. */
export function networkError(err: unknown, url: string, registry: string, signal?: AbortSignal, retries?: StepRetries): GantryError {
  if (signal?.aborted) return new AbortedError(signal.reason);
  // A request body that failed (a layer that did not match its digest), or our own stall
  // timeout, surfaces as the error or its cause.
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
  const failed = retries ? `${retries.registry} failed to ${retries.action}` : `cannot reach ${registry}`;
  return new RegistryError(`${failed}: the connection to ${where} failed (${reason})${retries?.persistence ?? ""}; try again`, { cause: err, retryable });
}

function gantryCause(err: unknown): GantryError | undefined {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 4; e = causeOf(e), depth++) {
    if (e instanceof GantryError) return e;
  }
  return undefined;
}

/** The first string `code` (errno or Node's) on `err` or its causes, four deep. */
export function errorCode(err: unknown): string | undefined {
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

/** Up to this much of a body is read by discard, to its end, so that its connection serves the next request. */
const DRAINED_BODY = 64 * 1024;
const DRAIN_TIMEOUT_MS = 10_000;

/**
 * Releases a response's connection: a small body (an error document, a 401's) is read to
 * its end so that the connection serves the next request; a larger one, or one that stops
 * coming, is destroyed, which closes it.
 */
export async function discard(response: RegistryResponse): Promise<void> {
  const body = response.body;
  if (body === null || body.destroyed || body.readableEnded) return;
  await new Promise<void>((resolve) => {
    let drained = 0;
    const giveUp = setTimeout(() => body.destroy(), DRAIN_TIMEOUT_MS);
    body.on("data", (chunk: Buffer) => {
      drained += chunk.length;
      if (drained > DRAINED_BODY) body.destroy();
    });
    body.once("error", () => { /* the connection is gone: nothing to release */ });
    body.once("close", () => {
      clearTimeout(giveUp);
      resolve();
    });
    body.resume();
  });
}

/** A URL's path alone, for messages (no host, no query). */
export function pathOf(url: string): string {
  const u = new URL(url);
  return u.pathname;
}
