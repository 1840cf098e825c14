/**
 * One HTTP exchange (src/transports/docker/http-exchange.ts) against a real node:http
 * server: connections are kept and reused (a discarded error answer included), bodiless
 * answers have a null body, a request body that fails fails the exchange with its own
 * error, and the signal ends a body being read. And `--tls-verify=false` as skopeo has it:
 * HTTPS without a certificate check, else plain HTTP (test/fixtures/tls: a self-signed
 * certificate).
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { exchange, type Exchange } from "../../src/transports/docker/http-exchange.js";
import { discard } from "../../src/transports/docker/http.js";
import { readLimited } from "../../src/transports/docker/body.js";
import { RegistryClient } from "../../src/transports/docker/client.js";
import { RegistryError } from "../../src/model/errors.js";
import { REPO_ROOT } from "../helpers/paths.js";

interface Server {
  url: string;
  /** Connections accepted so far. */
  connections(): number;
  /** Bodies received, whole, by request path. */
  received: Map<string, Buffer>;
}

async function startServer(t: TestContext, answer: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void, tls = false): Promise<Server> {
  let connections = 0;
  const received = new Map<string, Buffer>();
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      received.set(req.url ?? "", body);
      answer(req, res, body);
    });
  };
  const server: HttpServer = tls ? createTlsServer(TLS, handle) : createServer(handle);
  server.on(tls ? "secureConnection" : "connection", () => { connections++; });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  return { url: `${tls ? "https" : "http"}://127.0.0.1:${(server.address() as AddressInfo).port}`, connections: () => connections, received };
}

const TLS = {
  cert: readFileSync(join(REPO_ROOT, "test/fixtures/tls/cert.pem")),
  key: readFileSync(join(REPO_ROOT, "test/fixtures/tls/key.pem")),
};

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
  const chunks = got.body![Symbol.asyncIterator]();
  await chunks.next();
  const stop = new Error("stopped by the caller");
  controller.abort(stop);
  await assert.rejects(async () => { for (;;) if ((await chunks.next()).done) return; }, (err: unknown) => err === stop);
});

/** A registry API that answers every request 200 with `{}`. */
const openRegistry = (_req: IncomingMessage, res: ServerResponse): void => {
  res.writeHead(200, { "content-type": "application/json", "content-length": "2" }).end("{}");
};

/**
 * A client of the server as a registry that is not on loopback: 0.0.0.0 reaches this
 * machine's 127.0.0.1 without being a loopback name, so the TLS rules apply.
 */
function remoteClient(server: Server, tlsVerify: boolean): RegistryClient {
  const port = new URL(server.url).port;
  return new RegistryClient(`0.0.0.0:${port}`, { tlsVerify, env: {}, retry: { maxTries: 1 } });
}

async function tagsOf(client: RegistryClient): Promise<number> {
  const response = await client.request({ method: "GET", url: "/v2/app/tags/list", scopes: [], idempotent: true, retries: client.step("list the tags") });
  await discard(response);
  return response.status;
}

test("--tls-verify=false: HTTPS without checking a self-signed certificate; checked, it is refused with advice", async (t) => {
  const tls = await startServer(t, openRegistry, true);
  assert.equal(await tagsOf(remoteClient(tls, false)), 200);
  assert.ok(tls.received.has("/v2/app/tags/list"), "spoken to over TLS");
  await assert.rejects(tagsOf(remoteClient(tls, true)),
    (e: unknown) => e instanceof RegistryError && /the TLS connection to 0\.0\.0\.0:\d+ failed .*--tls-verify=false/.test(e.message));
});

test("--tls-verify=false: a registry without TLS is spoken to over plain HTTP", async (t) => {
  const plain = await startServer(t, openRegistry);
  assert.equal(await tagsOf(remoteClient(plain, false)), 200);
  assert.ok(plain.received.has("/v2/app/tags/list"));
  assert.ok(plain.received.has("/v2/"), "the API check found the registry over HTTP");
});
