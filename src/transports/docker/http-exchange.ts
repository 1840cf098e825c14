import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage } from "node:http";
import { readFileSync } from "node:fs";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { rootCertificates } from "node:tls";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { counting } from "../../util/io.js";

/**
 * One HTTP request and its answer, over node:http and node:https with connections kept
 * alive per origin. This is what gantry used Node's fetch for; fetch cost 60–80 ms to load
 * and set up before its first request and 7–10 ms a request after it, against 11–23 ms and
 * 3–4 ms here, on a loopback registry (a push of an edited app makes ten requests).
 *
 * The answer has the parts of a fetch Response that gantry reads, with the same meaning,
 * but its body is the Node stream as it comes off the socket (a web stream made from it
 * would copy every chunk), or null when the answer can have none (HEAD, 204, 304).
 */

/** What a registry answered: the parts of a fetch Response gantry reads. */
export interface RegistryResponse {
  readonly status: number;
  /** A 2xx status. */
  readonly ok: boolean;
  /** The URL asked, for messages. */
  readonly url: string;
  readonly headers: { get(name: string): string | null };
  /** Read it, or destroy it (which drops its connection); `discard` in http.ts does either. */
  readonly body: Readable | null;
}

/** One request: `body` a Buffer (sent with its length) or a stream (sent chunked unless a content-length is given). */
export interface Exchange {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: Buffer | Readable | undefined;
  /** Fired, it ends the exchange (and a body being read) with its reason. */
  signal: AbortSignal;
  /** Told each time a piece of the body is taken, and when the whole request is sent. */
  onSent(): void;
  /** HTTPS without checking the server's certificate (`--tls-verify=false`). */
  insecure?: boolean;
}

/** What fetch sent unless told otherwise: some registries' front ends refuse requests without them. */
const USER_AGENT = "gantry";

/**
 * Idle sockets of a keep-alive agent are unreferenced: they never keep the process alive.
 * An idle one is closed after IDLE_MS, so a long-lived process (a library user) does not
 * hold connections to every registry it ever spoke to; a socket in use is not touched by
 * it (the stall timeouts watch those).
 */
const IDLE_MS = 30_000;
const kept = { keepAlive: true, timeout: IDLE_MS };
// Each agent is made at its first use: making one loads node's http or https module, which
// a command that never speaks to a registry should not pay for as it starts.
let plainAgent: HttpAgent | undefined;
let uncheckedAgent: HttpsAgent | undefined;
let httpsChecked: HttpsAgent | undefined;

function agentFor(secure: boolean, insecure: boolean | undefined): HttpAgent | HttpsAgent {
  if (!secure) return (plainAgent ??= new HttpAgent(kept));
  if (insecure === true) return (uncheckedAgent ??= new HttpsAgent({ ...kept, rejectUnauthorized: false }));
  return checkedAgent();
}

/**
 * The agent of checked HTTPS, made at its first use. The `gantry` command (bin/gantry) starts
 * node without NODE_EXTRA_CA_CERTS, which node would load at start-up whether or not a TLS
 * connection follows, and names the file in GANTRY_EXTRA_CA_CERTS: its certificates are
 * trusted here, beside node's own, as node would have trusted them.
 */
function checkedAgent(): HttpsAgent {
  if (httpsChecked !== undefined) return httpsChecked;
  const extra = process.env["GANTRY_EXTRA_CA_CERTS"];
  let ca: string[] | undefined;
  if (extra !== undefined && extra !== "") {
    try {
      ca = [...rootCertificates, readFileSync(extra, "utf8")];
    } catch (err) {
      // What node does with a file it cannot load: warn, and trust its own certificates.
      process.emitWarning(`Ignoring extra certs from \`${extra}\`, load failed: ${(err as Error).message}`);
    }
  }
  return (httpsChecked = new HttpsAgent({ ...kept, ...(ca !== undefined ? { ca } : {}) }));
}

/**
 * Sends the request; resolves with the answer once its headers are in, or rejects with the
 * network error (or the signal's reason). Redirects are the caller's to follow.
 */
export function exchange(ex: Exchange): Promise<RegistryResponse> {
  return new Promise((resolve, reject) => {
    if (ex.signal.aborted) {
      reject(ex.signal.reason);
      return;
    }
    const secure = ex.url.startsWith("https:");
    const headers: Record<string, string> = { "user-agent": USER_AGENT, accept: "*/*", ...ex.headers };
    if (Buffer.isBuffer(ex.body)) headers["content-length"] = String(ex.body.length);
    const req = (secure ? httpsRequest : httpRequest)(ex.url, { method: ex.method, headers, agent: agentFor(secure, ex.insecure) });
    let answer: IncomingMessage | undefined;
    const abort = (): void => {
      const reason = ex.signal.reason as Error;
      if (answer !== undefined) answer.destroy(reason);
      else req.destroy(reason);
    };
    ex.signal.addEventListener("abort", abort, { once: true });
    const settle = (): void => ex.signal.removeEventListener("abort", abort);
    req.once("error", (err) => {
      settle();
      reject(err);
    });
    req.once("response", (res) => {
      answer = res;
      res.once("close", settle);
      const response = responseOf(ex, res);
      // A bodiless answer is given once it is closed (ended, or cut off), when its connection is
      // free again: the next request then reuses it instead of opening another.
      if (response.body === null) res.once("close", () => resolve(response)).resume();
      else resolve(response);
    });
    // A body that fails (a layer that does not match its digest) fails the exchange with its
    // own error, not with the dropped connection that follows.
    sendBody(req, ex).catch((err: unknown) => {
      settle();
      reject(err);
      req.destroy(err as Error);
    });
  });
}

async function sendBody(req: ClientRequest, ex: Exchange): Promise<void> {
  if (ex.body === undefined || Buffer.isBuffer(ex.body)) {
    req.end(ex.body);
    ex.onSent();
    return;
  }
  await pipeline(ex.body, counting(() => ex.onSent()), req);
  ex.onSent();
}

function responseOf(ex: Exchange, res: IncomingMessage): RegistryResponse {
  const status = res.statusCode ?? 0;
  const bodiless = ex.method === "HEAD" || status === 204 || status === 304;
  return {
    status,
    ok: status >= 200 && status < 300,
    url: ex.url,
    headers: {
      get(name: string): string | null {
        const value = res.headers[name.toLowerCase()];
        return value === undefined ? null : Array.isArray(value) ? value.join(", ") : value;
      },
    },
    body: bodiless ? null : res,
  };
}
