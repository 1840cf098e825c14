/**
 * One HTTP exchange (src/transports/docker/http-exchange.ts) against a real node:http
 * server: connections are kept and reused (a discarded error answer included), bodiless
 * answers have a null body, a request body that fails fails the exchange with its own
 * error, and the signal ends a body being read.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { exchange, type Exchange } from "../../src/transports/docker/http-exchange.js";
import { discard } from "../../src/transports/docker/http.js";
import { readLimited } from "../../src/transports/docker/body.js";

interface Server {
  url: string;
  /** Connections accepted so far. */
  connections(): number;
  /** Bodies received, whole, by request path. */
  received: Map<string, Buffer>;
}

async function startServer(t: TestContext, answer: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void): Promise<Server> {
  let connections = 0;
  const received = new Map<string, Buffer>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      received.set(req.url ?? "", body);
      answer(req, res, body);
    });
  });
  server.on("connection", () => { connections++; });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, connections: () => connections, received };
}

function ask(url: string, more: Partial<Exchange> = {}): Promise<Awaited<ReturnType<typeof exchange>>> {
  return exchange({ method: "GET", url, headers: {}, signal: new AbortController().signal, onSent: () => {}, ...more });
}

test("answers read, bodiless and discarded all leave their connection for the next request", async (t) => {
  const server = await startServer(t, (req, res) => {
    if (req.url === "/missing") {
      // No content-length: sent chunked, as a registry may; discard must still read it to its end.
      res.writeHead(404, { "content-type": "application/json" });
      res.write('{"errors":');
      res.end('[{"code":"BLOB_UNKNOWN"}]}');
    } else if (req.url === "/empty") {
      res.writeHead(204).end();
    } else {
      res.writeHead(200, { "content-type": "text/plain", "content-length": "5", "docker-content-digest": "sha256:abc" }).end(req.method === "HEAD" ? undefined : "hello");
    }
  });
  const got = await ask(`${server.url}/thing`);
  assert.equal(got.status, 200);
  assert.equal(got.ok, true);
  assert.equal(got.headers.get("Docker-Content-Digest"), "sha256:abc");
  assert.equal(got.headers.get("x-absent"), null);
  assert.equal((await readLimited(got, 100)).toString(), "hello");

  const head = await ask(`${server.url}/thing`, { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(head.body, null);
  const empty = await ask(`${server.url}/empty`);
  assert.equal(empty.status, 204);
  assert.equal(empty.body, null);

  const missing = await ask(`${server.url}/missing`);
  assert.equal(missing.status, 404);
  assert.equal(missing.ok, false);
  await discard(missing);
  const posted = await ask(`${server.url}/upload`, { method: "PUT", body: Buffer.from("layer bytes") });
  await discard(posted);
  assert.deepEqual(server.received.get("/upload"), Buffer.from("layer bytes"));
  assert.equal(server.connections(), 1, "every request went over the first connection");
});

test("a request body that fails fails the exchange with the body's own error", async (t) => {
  const server = await startServer(t, (_req, res) => res.writeHead(201).end());
  const damaged = new Error("the layer does not match its digest");
  const body = new Readable({
    read() {
      this.push(Buffer.alloc(64 * 1024, 1));
      this.destroy(damaged);
    },
  });
  let sent = 0;
  await assert.rejects(
    ask(`${server.url}/upload`, { method: "PUT", headers: { "content-length": String(1024 * 1024) }, body, onSent: () => { sent++; } }),
    (err: unknown) => err === damaged,
  );
  assert.ok(sent >= 1, "each piece of body taken is told");
  assert.equal(server.received.has("/upload"), false, "the server never saw a whole request");
});

test("the signal ends an answer's body being read, with its reason", async (t) => {
  const server = await startServer(t, (_req, res) => {
    res.writeHead(200, { "content-length": String(1024 * 1024) });
    res.write(Buffer.alloc(1000)); // and the rest never comes
  });
  const controller = new AbortController();
  const got = await ask(`${server.url}/slow`, { signal: controller.signal });
  const reader = got.body!.getReader();
  await reader.read();
  const stop = new Error("stopped by the caller");
  controller.abort(stop);
  await assert.rejects(async () => { for (;;) if ((await reader.read()).done) return; }, (err: unknown) => err === stop);
});
