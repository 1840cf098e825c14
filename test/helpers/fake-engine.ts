import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A stand-in for the Docker engine, in this process: a node:http server on a unix socket in
 * a temp dir or on 127.0.0.1, serving /_ping, /images/get and /images/load the way dockerd
 * 20.10 does, and recording every request with its body as it arrived. A test can replace
 * the answer to any path (an engine that hangs, fails, or stalls half way) and watch the
 * connections, to see that a client lets them go.
 */

export interface RecordedRequest {
  readonly method: string;
  readonly pathname: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  /** The body's chunks as they arrived (complete once `ended` is true). */
  readonly chunks: Buffer[];
  ended: boolean;
}

export type FakeHandler = (req: IncomingMessage, res: ServerResponse, recorded: RecordedRequest) => void;

export interface FakeEngine {
  /** The DOCKER_HOST value that reaches it. */
  readonly host: string;
  readonly requests: RecordedRequest[];
  /** Images /images/get serves, by name: the bytes are sent as the "tar". */
  readonly images: Map<string, Buffer>;
  /** What a successful /images/load answers with, piece by piece (each written separately). */
  loadReply: string[];
  /** Replaces the answer to requests for `pathname`. */
  handle(pathname: string, handler: FakeHandler): void;
  /** Connections currently open. */
  openConnections(): number;
  /** Resolves once the connections are all closed; rejects after `ms`. */
  waitForNoConnections(ms?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startFakeEngine(listen: "unix" | "tcp"): Promise<FakeEngine> {
  const dir = listen === "unix" ? await mkdtemp(join(tmpdir(), "gantry-engine-")) : undefined;
  const requests: RecordedRequest[] = [];
  const images = new Map<string, Buffer>();
  const overrides = new Map<string, FakeHandler>();
  const sockets = new Set<Socket>();
  const engine = {
    loadReply: ['{"stream":"Loaded image: fake:1\\n"}\n'],
  };

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://engine");
    const recorded: RecordedRequest = {
      method: req.method ?? "", pathname: url.pathname, query: url.searchParams, headers: req.headers, chunks: [], ended: false,
    };
    requests.push(recorded);
    req.on("data", (chunk: Buffer) => recorded.chunks.push(chunk));
    req.on("end", () => { recorded.ended = true; });
    // A client that gives up mid-request is expected here, not a failure of the fake.
    req.on("error", () => {});
    res.on("error", () => {});
    const override = overrides.get(url.pathname);
    if (override) return override(req, res, recorded);
    if (url.pathname === "/_ping") return servePing(res);
    if (url.pathname === "/images/get") return serveSave(res, url.searchParams.getAll("names"), images);
    if (url.pathname === "/images/load") return serveLoad(req, res, engine.loadReply);
    sendJson(res, 404, { message: "page not found" });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });

  const address = dir === undefined ? { port: 0, host: "127.0.0.1" } : { path: join(dir, "docker.sock") };
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(address, () => resolve());
  });
  const bound = server.address();
  const host = dir !== undefined
    ? `unix://${join(dir, "docker.sock")}`
    : `tcp://127.0.0.1:${typeof bound === "object" && bound !== null ? bound.port : 0}`;

  return Object.assign(engine, {
    host,
    requests,
    images,
    handle(pathname: string, handler: FakeHandler) { overrides.set(pathname, handler); },
    openConnections: () => sockets.size,
    async waitForNoConnections(ms = 5_000) {
      const deadline = Date.now() + ms;
      while (sockets.size > 0) {
        if (Date.now() > deadline) throw new Error(`${sockets.size} connection(s) to the fake engine still open after ${ms} ms`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    },
  });
}

function servePing(res: ServerResponse): void {
  res.writeHead(200, { "Content-Type": "text/plain; charset=utf-8", "Api-Version": "1.41", "OSType": "linux" });
  res.end("OK");
}

function serveSave(res: ServerResponse, names: string[], images: Map<string, Buffer>): void {
  const missing = names.find((name) => !images.has(name));
  // dockerd 20.10's answer for a name it does not know.
  if (missing !== undefined) return sendJson(res, 404, { message: "reference does not exist" });
  res.writeHead(200, { "Content-Type": "application/x-tar" });
  for (const name of names) res.write(images.get(name)!);
  res.end();
}

function serveLoad(req: IncomingMessage, res: ServerResponse, reply: string[]): void {
  // Like dockerd: the whole tar is read before the first message is sent.
  req.on("end", () => {
    res.writeHead(200, { "Content-Type": "application/json" });
    writePieces(res, reply);
  });
  req.resume();
}

/** Writes each piece in its own turn of the event loop, so that they reach the client apart. */
export function writePieces(res: ServerResponse, pieces: string[]): void {
  const [first, ...rest] = pieces;
  if (first === undefined) {
    res.end();
    return;
  }
  res.write(first);
  setTimeout(() => writePieces(res, rest), 5);
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "Content-Type": "application/json" });
  res.end(`${JSON.stringify(body)}\n`);
}
