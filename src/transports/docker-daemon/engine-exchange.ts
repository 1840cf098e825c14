import { request as httpRequest, type IncomingHttpHeaders, type RequestOptions } from "node:http";
import { PassThrough, type Readable } from "node:stream";
import { EngineError, GantryError, AbortedError, IoError } from "../../model/errors.js";
import type { EngineAddress } from "./engine-address.js";

/**
 * One HTTP exchange with the Docker engine over node:http (fetch cannot reach a unix socket).
 * Each exchange has its own connection (no agent, no pool), so nothing lingers once it ends:
 * the connection closes when the answer has been read, when the caller destroys the body it
 * was handed, or when the caller's AbortSignal fires, whichever comes first. Every failure is
 * one GantryError naming the engine; an aborted signal always wins as ABORTED.
 */
export interface EngineRequest {
  readonly method: "GET" | "POST";
  /** Path and query, already encoded: "/images/get?names=app%3A1". */
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Sent as the request body, chunked, as it is read: never held whole in memory. */
  readonly body?: Readable;
  /** What the request asks of the engine, for messages: "load an image", "save app:1". */
  readonly action: string;
  readonly signal?: AbortSignal | undefined;
  /** Gives up when the engine has not begun to answer within this many milliseconds. */
  readonly answerTimeoutMs?: number;
}

/** The engine's answer, once it has begun: status and headers, and the body still streaming. */
export interface EngineResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The answer's body. It fails with a GantryError; destroying it closes the connection. */
  readonly body: Readable;
}

/** Errors on connecting that mean no engine is there, as opposed to one that broke off. */
const UNREACHABLE_CODES = new Set([
  "ENOENT", "ENOTDIR", "ECONNREFUSED", "EACCES", "EPERM",
  "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT", "ENOTFOUND", "EAI_AGAIN", "EADDRNOTAVAIL",
]);

/** Sends `request` and resolves once the engine has begun to answer, whatever its status. */
export function exchange(address: EngineAddress, request: EngineRequest): Promise<EngineResponse> {
  const { signal, body: upload } = request;
  return new Promise<EngineResponse>((resolve, reject) => {
    if (signal?.aborted) {
      upload?.destroy();
      reject(abortedError(signal));
      return;
    }
    let answered = false;
    let uploadError: unknown;
    let timer: NodeJS.Timeout | undefined;
    let answerBody: PassThrough | undefined;

    const options: RequestOptions = {
      ...connectOptions(address),
      method: request.method,
      path: request.path,
      headers: { ...request.headers },
      agent: false,
    };
    const req = httpRequest(options);

    const describe = (err: unknown): GantryError => {
      if (signal?.aborted) return abortedError(signal);
      if (uploadError !== undefined) return uploadFailure(uploadError, address);
      if (err instanceof GantryError) return err;
      return answered ? brokenConnection(err, address, request.action) : connectionFailure(err, address, request.action);
    };
    const onAbort = (): void => {
      const err = abortedError(signal);
      upload?.destroy();
      answerBody?.destroy(err);
      req.destroy(err);
    };
    const stopListening = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    signal?.addEventListener("abort", onAbort, { once: true });

    req.on("error", (err) => {
      // The upload is let go before anyone hears of the failure.
      if (upload !== undefined && !upload.readableEnded) upload.destroy();
      if (!answered) {
        stopListening();
        reject(describe(err));
      } else if (uploadError !== undefined) {
        // Once the answer is out, a broken socket also fails its body; only a failing upload needs saying here.
        answerBody?.destroy(describe(err));
      }
    });

    req.on("response", (res) => {
      answered = true;
      clearTimeout(timer);
      const out = new PassThrough();
      answerBody = out;
      res.on("error", (err) => out.destroy(describe(err)));
      // A failure before the caller has begun to read must not crash the process as an unheard
      // "error" event: it stays in out.errored, and for-await, pipeline() and finished() report it.
      out.on("error", () => {});
      out.on("close", () => {
        signal?.removeEventListener("abort", onAbort);
        // Read to the end or given up by the caller: either way the connection is done.
        req.destroy();
      });
      res.pipe(out);
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: out });
    });

    if (request.answerTimeoutMs !== undefined) {
      const ms = request.answerTimeoutMs;
      timer = setTimeout(() => {
        req.destroy(new EngineError(`the Docker engine at ${address.display} did not answer within ${formatMs(ms)} when asked to ${request.action}; check that it is running and responsive, or set DOCKER_HOST to another engine`));
      }, ms);
    }

    if (upload === undefined) {
      req.end();
    } else {
      // By hand rather than with pipeline(): pipeline would destroy the upload with the request's
      // error, and a connection the engine dropped would then pass for a tar that failed to read.
      upload.on("error", (err) => {
        uploadError ??= err;
        req.destroy(err);
      });
      req.on("close", () => {
        if (!upload.readableEnded) upload.destroy();
      });
      upload.pipe(req);
    }
  });
}

/** Reads at most `limit` bytes of a body (an error document, a ping's "OK"), then lets the connection go. */
export async function readSmallBody(body: Readable, limit = 64 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      const room = limit - size;
      chunks.push(chunk.length > room ? chunk.subarray(0, room) : chunk);
      size += Math.min(chunk.length, room);
      if (size >= limit) break;
    }
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks);
}

function connectOptions(address: EngineAddress): RequestOptions {
  return address.kind === "unix"
    ? { socketPath: address.socketPath }
    : { host: address.host, port: address.port };
}

/** The AbortedError of a fired signal, carrying its reason. */
export function abortedError(signal: AbortSignal | undefined): GantryError {
  return new AbortedError(signal?.reason);
}

function connectionFailure(err: unknown, address: EngineAddress, action: string): GantryError {
  const code = errnoCode(err);
  if (code === undefined || !UNREACHABLE_CODES.has(code)) return brokenConnection(err, address, action);
  const where = address.display;
  if (code === "EACCES" || code === "EPERM") {
    return new EngineError(`the Docker engine at ${where} cannot be reached (permission to use ${address.kind === "unix" ? `the socket ${address.socketPath}` : "the address"} was denied, ${code}); get access to it (for docker, the docker group), or set DOCKER_HOST to an engine you may use`, { cause: err });
  }
  const reason = (code === "ENOENT" || code === "ENOTDIR") && address.kind === "unix"
    ? `no socket exists at ${address.socketPath}`
    : code === "ECONNREFUSED" ? "the connection was refused"
    : code === "ENOTFOUND" || code === "EAI_AGAIN" ? "the host name does not resolve"
    : code;
  return new EngineError(`the Docker engine at ${where} cannot be reached (${reason}); start it (dockerd, or podman system service), or set DOCKER_HOST to the address of a running engine`, { cause: err });
}

function brokenConnection(err: unknown, address: EngineAddress, action: string): GantryError {
  const reason = errnoCode(err) ?? (err instanceof Error ? err.message : String(err));
  return new EngineError(`the connection to the Docker engine at ${address.display} broke while asking it to ${action} (${reason}); check that the engine is still running and try again`, { cause: err });
}

/** The stream being uploaded failed: its own GantryError stays as it is, anything else is named as the upload's. */
function uploadFailure(err: unknown, address: EngineAddress): GantryError {
  if (err instanceof GantryError) return err;
  const reason = err instanceof Error ? err.message : String(err);
  return new IoError(`the image tar being sent to the Docker engine at ${address.display} could not be read: ${reason}`, { cause: err });
}

function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
