import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { listenOnLoopback } from "./registry.js";

/**
 * A proxy on 127.0.0.1 in front of a real registry that injects the faults of a flaky
 * network or an overloaded registry, scripted per test:
 * - `status`: answers 503 or 429 (with Retry-After when given) instead of forwarding;
 * - `reset-upload`: forwards `after` bytes of the request's body, then resets both connections;
 * - `reset-download`: forwards the answer's headers and `after` bytes of its body, then resets;
 * - `truncate`: the same, but closes the connection cleanly (the body ends short of its length);
 * - `stall`: forwards the headers and `after` bytes of the body, then sends nothing more,
 *   holding the connection until the client leaves; without `after`, the registry gets the
 *   request and acts on it, but its answer never comes;
 * - `wrong-length`: forwards the answer whole under a Content-Length `by` bytes off, then closes.
 * A rule says which requests it may hit (`when`), which of those (`every` Nth) and how many
 * times. Every injection is counted by kind, and every request is recorded with what was
 * done to it. The Host header goes upstream unchanged, so the registry's Locations point
 * back at the proxy.
 */

export type Fault =
  | { readonly kind: "status"; readonly status: number; readonly retryAfter?: number }
  | { readonly kind: "reset-upload"; readonly after: number }
  | { readonly kind: "reset-download"; readonly after: number }
  | { readonly kind: "truncate"; readonly after: number }
  | { readonly kind: "stall"; readonly after?: number }
  | { readonly kind: "wrong-length"; readonly by: number };

export interface ProxiedRequest {
  readonly method: string;
  /** Path and query. */
  readonly path: string;
  /** The Range header the client sent, if any. */
  readonly range: string | undefined;
  /** The request body's declared length (its Content-Length), if any. */
  readonly length: number | undefined;
  /** The registry's status, when the answer came from it. */
  status?: number;
  /** The fault injected into this exchange, named as `faultName` names it. */
  fault?: string;
}

export interface FaultRule {
  readonly fault: Fault;
  /** Which requests the rule may hit; default all. */
  readonly when?: (r: ProxiedRequest) => boolean;
  /** Hits the Nth, 2Nth, … request it may hit; default every one. */
  readonly every?: number;
  /** Hits at most this many; default no limit. */
  readonly times?: number;
}

export interface FaultProxy {
  /** "127.0.0.1:PORT": use it as the registry host. */
  readonly host: string;
  readonly requests: ProxiedRequest[];
  /** Injections so far, by fault name ("503", "429", "reset-upload", …). */
  readonly injected: Map<string, number>;
  inject(rule: FaultRule): void;
  /** Drops every rule, the request log and the counts. */
  clear(): void;
  stop(): Promise<void>;
}

/** "503" and "429" for statuses, the kind otherwise. */
export function faultName(fault: Fault): string {
  return fault.kind === "status" ? String(fault.status) : fault.kind;
}

interface ActiveRule extends FaultRule { seen: number; hits: number }

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const rules: ActiveRule[] = [];
  const requests: ProxiedRequest[] = [];
  const injected = new Map<string, number>();
  const [targetHost, targetPort] = target.split(":") as [string, string];

  const pick = (seen: ProxiedRequest): Fault | undefined => {
    for (const rule of rules) {
      if (rule.times !== undefined && rule.hits >= rule.times) continue;
      if (rule.when && !rule.when(seen)) continue;
      rule.seen++;
      if (rule.seen % (rule.every ?? 1) !== 0) continue;
      rule.hits++;
      return rule.fault;
    }
    return undefined;
  };

  const server = createServer((req, res) => {
    const declared = req.headers["content-length"];
    const seen: ProxiedRequest = {
      method: req.method ?? "GET", path: req.url ?? "/", range: req.headers.range,
      length: declared === undefined ? undefined : Number(declared),
    };
    const missed = (): void => {
      // The body was shorter than the point the fault was to strike at: nothing was injected.
      injected.set(seen.fault!, injected.get(seen.fault!)! - 1);
      delete seen.fault;
    };
    requests.push(seen);
    const fault = pick(seen);
    if (fault) {
      seen.fault = faultName(fault);
      injected.set(seen.fault, (injected.get(seen.fault) ?? 0) + 1);
    }
    if (fault?.kind === "status") {
      answerInstead(req, res, fault);
      return;
    }
    const upstream = httpRequest({ hostname: targetHost, port: Number(targetPort), method: req.method, path: req.url, headers: req.headers }, (up) => {
      if (up.statusCode !== undefined) seen.status = up.statusCode;
      passAnswer(up, res, fault, missed);
    });
    upstream.on("error", () => {
      if (!res.headersSent) res.writeHead(502);
      res.destroy();
    });
    res.on("close", () => upstream.destroy());
    if (fault?.kind === "reset-upload") cutUpload(req, upstream, fault.after, missed);
    else req.pipe(upstream);
  });
  return {
    host: await listenOnLoopback(server),
    requests,
    injected,
    inject(rule) { rules.push({ ...rule, seen: 0, hits: 0 }); },
    clear() {
      rules.length = 0;
      requests.length = 0;
      injected.clear();
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The status (and Retry-After) in place of the registry's answer, once the request's body is in. */
function answerInstead(req: IncomingMessage, res: ServerResponse, fault: Extract<Fault, { kind: "status" }>): void {
  req.resume();
  req.on("end", () => {
    const body = JSON.stringify({ errors: [{ code: fault.status === 429 ? "TOOMANYREQUESTS" : "UNAVAILABLE", message: "injected by the fault proxy" }] });
    res.writeHead(fault.status, {
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(body)),
      ...(fault.retryAfter !== undefined ? { "retry-after": String(fault.retryAfter) } : {}),
    }).end(body);
  });
}

/** Forwards `after` bytes of the request's body, then resets the client's connection and the registry's; `missed` when the body was shorter. */
function cutUpload(req: IncomingMessage, upstream: ReturnType<typeof httpRequest>, after: number, missed: () => void): void {
  let sent = 0;
  req.on("data", (chunk: Buffer) => {
    if (sent >= after) return;
    const part = chunk.subarray(0, after - sent);
    sent += part.length;
    upstream.write(part);
    if (sent >= after) {
      reset(req.socket);
      upstream.destroy();
    }
  });
  req.on("end", () => {
    if (sent < after) missed();
    upstream.end();
  });
}

/** The registry's answer, passed on as the fault says; `missed` when it ended before the fault could strike. */
function passAnswer(up: IncomingMessage, res: ServerResponse, fault: Fault | undefined, missed: () => void): void {
  if (fault?.kind === "wrong-length") {
    const parts: Buffer[] = [];
    up.on("data", (c: Buffer) => parts.push(c));
    up.on("end", () => {
      const body = Buffer.concat(parts);
      writeRaw(res.socket!, up, { "content-length": String(body.length + fault.by), connection: "close" });
      res.socket!.end(body);
    });
    return;
  }
  if (fault?.kind === "stall" && fault.after === undefined) {
    // The registry acted on the request; its answer never comes.
    up.destroy();
    return;
  }
  res.writeHead(up.statusCode ?? 502, up.headers);
  if (fault?.kind !== "reset-download" && fault?.kind !== "truncate" && fault?.kind !== "stall") {
    up.pipe(res);
    return;
  }
  res.flushHeaders();
  const after = fault.after ?? 0;
  let sent = 0;
  // Once `after` bytes are out: reset, close, or fall silent; the registry's answer is dropped.
  const cut = (): void => {
    up.destroy();
    if (fault.kind === "reset-download") reset(res.socket!);
    else if (fault.kind === "truncate") res.socket!.end();
  };
  if (after === 0) {
    cut();
    return;
  }
  up.on("data", (chunk: Buffer) => {
    if (sent >= after) return;
    const part = chunk.subarray(0, after - sent);
    sent += part.length;
    if (sent < after) res.write(part);
    else res.write(part, cut);
  });
  up.on("end", () => {
    if (sent >= after) return;
    missed();
    res.end();
  });
}

/** Writes the status line and headers of `up` to `socket` by hand, `replace` laid over them. */
function writeRaw(socket: Socket, up: IncomingMessage, replace: Record<string, string>): void {
  const lines = [`HTTP/1.1 ${up.statusCode ?? 502} ${up.statusMessage ?? ""}`];
  for (let i = 0; i < up.rawHeaders.length; i += 2) {
    const name = up.rawHeaders[i]!;
    if (!(name.toLowerCase() in replace) && name.toLowerCase() !== "transfer-encoding") lines.push(`${name}: ${up.rawHeaders[i + 1]}`);
  }
  for (const [name, value] of Object.entries(replace)) lines.push(`${name}: ${value}`);
  socket.write(`${lines.join("\r\n")}\r\n\r\n`);
}

/** Drops a connection with a TCP reset, as a failing network or proxy does. */
function reset(socket: Socket): void {
  if (typeof socket.resetAndDestroy === "function") socket.resetAndDestroy();
  else socket.destroy();
}
