import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { DigestMismatchError, EngineError, GantryError, ImageNotFoundError } from "../../src/model/errors.js";
import { EngineClient } from "../../src/transports/docker-daemon/engine.js";
import { DEFAULT_DOCKER_HOST, engineAddress } from "../../src/transports/docker-daemon/engine-address.js";
import { JsonMessageSplitter, MessageStreamError } from "../../src/transports/docker-daemon/json-messages.js";
import { sendJson, startFakeEngine, type FakeEngine } from "../helpers/fake-engine.js";
import { freePort } from "../helpers/registry.js";
import { run } from "../helpers/tools.js";
import { tmpDir } from "../helpers/tmp.js";

/**
 * The Docker engine client against a fake engine in this process (test/helpers/fake-engine.ts),
 * on a unix socket and on tcp: where DOCKER_HOST points, what is sent, how answers and
 * failures come back, and that an abort lets go of streams and connections.
 */

function isCode(code: string) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof GantryError, `expected a GantryError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  };
}

async function waitUntil(condition: () => boolean, ms = 3_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return true;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe("DOCKER_HOST", () => {
  test("unset or empty means the default socket; unix:// and tcp:// are read as the docker CLI reads them", () => {
    assert.equal(DEFAULT_DOCKER_HOST, "unix:///var/run/docker.sock");
    assert.deepEqual(engineAddress({}), { kind: "unix", socketPath: "/var/run/docker.sock", display: "unix:///var/run/docker.sock" });
    assert.deepEqual(engineAddress({ DOCKER_HOST: "" }), engineAddress({}));
    assert.deepEqual(engineAddress({ DOCKER_HOST: "unix://" }), engineAddress({}));
    assert.deepEqual(engineAddress({ DOCKER_HOST: "unix:///run/user/1000/podman/podman.sock" }),
      { kind: "unix", socketPath: "/run/user/1000/podman/podman.sock", display: "unix:///run/user/1000/podman/podman.sock" });
    assert.deepEqual(engineAddress({ DOCKER_HOST: "tcp://127.0.0.1:2375" }),
      { kind: "tcp", host: "127.0.0.1", port: 2375, display: "tcp://127.0.0.1:2375" });
    assert.deepEqual(engineAddress({ DOCKER_HOST: "tcp://engine.local" }),
      { kind: "tcp", host: "engine.local", port: 2375, display: "tcp://engine.local:2375" });
    assert.deepEqual(engineAddress({ DOCKER_HOST: "tcp://[::1]:2376/" }),
      { kind: "tcp", host: "::1", port: 2376, display: "tcp://[::1]:2376" });
    // TLS variables concern tcp only, as in the docker CLI.
    assert.equal(engineAddress({ DOCKER_HOST: "unix:///s.sock", DOCKER_TLS_VERIFY: "1" }).kind, "unix");
    assert.equal(engineAddress({ DOCKER_HOST: "tcp://h:2375", DOCKER_TLS_VERIFY: "" }).kind, "tcp");
  });

  test("what gantry cannot speak to is UNSUPPORTED, naming the value and what to use instead", () => {
    const refused: [Record<string, string>, RegExp][] = [
      [{ DOCKER_HOST: "ssh://me@build-box" }, /^DOCKER_HOST=ssh:\/\/me@build-box is not supported: .*ssh -L/],
      [{ DOCKER_HOST: "npipe:////./pipe/docker_engine" }, /^DOCKER_HOST=npipe:.* is not supported: .*unix:\/\/\/path\/to\/docker\.sock or tcp:\/\/HOST:PORT$/],
      [{ DOCKER_HOST: "fd://" }, /^DOCKER_HOST=fd:\/\/ is not supported/],
      [{ DOCKER_HOST: "https://127.0.0.1:2376" }, /^DOCKER_HOST=https:.* is not supported/],
      [{ DOCKER_HOST: "127.0.0.1:2375" }, /^DOCKER_HOST=127\.0\.0\.1:2375 is not an engine address gantry understands/],
      [{ DOCKER_HOST: "tcp://127.0.0.1:2376", DOCKER_TLS_VERIFY: "1" }, /with DOCKER_TLS_VERIFY set asks for TLS.*unset DOCKER_TLS_VERIFY/],
      [{ DOCKER_HOST: "tcp://127.0.0.1:2376", DOCKER_TLS: "1" }, /with DOCKER_TLS set asks for TLS/],
      [{ DOCKER_HOST: "tcp://127.0.0.1:2375/v1.41" }, /has a path or query after the port/],
      [{ DOCKER_HOST: "tcp://127.0.0.1:99999" }, /is not an engine address gantry understands/],
    ];
    for (const [env, message] of refused) {
      assert.throws(() => new EngineClient({ env }), (err: unknown) => {
        isCode("UNSUPPORTED")(err);
        assert.match((err as Error).message, message);
        return true;
      }, env["DOCKER_HOST"]);
    }
    assert.throws(() => engineAddress({ DOCKER_HOST: "tcp://me:s3cret@127.0.0.1:2375" }), (err: unknown) => {
      isCode("UNSUPPORTED")(err);
      assert.doesNotMatch((err as Error).message, /s3cret/, "a password is never repeated");
      return true;
    });
  });

  test("the client takes DOCKER_HOST from the env it is given, not from process.env", async (t) => {
    const engine = await startFakeEngine("unix");
    t.after(() => engine.stop());
    const saved = process.env["DOCKER_HOST"];
    process.env["DOCKER_HOST"] = "ssh://not-this-one";
    try {
      const client = new EngineClient({ env: { DOCKER_HOST: engine.host } });
      assert.equal(client.address.display, engine.host);
      await client.ping();
      assert.equal(engine.requests.length, 1);
    } finally {
      if (saved === undefined) delete process.env["DOCKER_HOST"];
      else process.env["DOCKER_HOST"] = saved;
    }
  });
});

for (const listen of ["unix", "tcp"] as const) {
  describe(`against a fake engine on ${listen}`, () => {
    let engine: FakeEngine;
    let client: EngineClient;
    before(async () => {
      engine = await startFakeEngine(listen);
      client = new EngineClient({ env: { DOCKER_HOST: engine.host } });
    });
    after(() => engine.stop());

    test("ping is GET /_ping and reports the API version", async () => {
      engine.requests.length = 0;
      assert.deepEqual(await client.ping(), { apiVersion: "1.41", osType: "linux" });
      assert.equal(engine.requests.length, 1);
      const [req] = engine.requests;
      assert.equal(req!.method, "GET");
      assert.equal(req!.pathname, "/_ping");
      await engine.waitForNoConnections();
    });

    test("saveImage is GET /images/get with names=NAME per image, in order, and streams the body as sent", async () => {
      engine.requests.length = 0;
      const app = randomBytes(200_000);
      const pinned = randomBytes(3_000);
      engine.images.set("app:1", app);
      engine.images.set("registry.example:5000/ns/app@sha256:0123", pinned);
      const stream = await client.saveImage(["app:1", "registry.example:5000/ns/app@sha256:0123"]);
      assert.ok(Buffer.concat([app, pinned]).equals(await readAll(stream)), "the saved bytes arrive unchanged");
      const [req] = engine.requests;
      assert.equal(req!.method, "GET");
      assert.equal(req!.pathname, "/images/get");
      assert.deepEqual(req!.query.getAll("names"), ["app:1", "registry.example:5000/ns/app@sha256:0123"]);
      assert.deepEqual([...req!.query.keys()], ["names", "names"]);
      await engine.waitForNoConnections();
    });

    test("loadImage POSTs to /images/load?quiet=1 a chunked x-tar body that arrives byte for byte while it is still being produced", async () => {
      engine.requests.length = 0;
      const parts = [randomBytes(100_000), randomBytes(70_000), randomBytes(123)];
      let seenBeforeLastPart = false;
      async function* produce(): AsyncGenerator<Buffer> {
        yield parts[0]!;
        // A client that buffers the whole tar sends nothing until this generator is done.
        seenBeforeLastPart = await waitUntil(() => (engine.requests[0]?.chunks.length ?? 0) > 0);
        yield parts[1]!;
        yield parts[2]!;
      }
      engine.loadReply = ['{"stream":"Loaded image: app:1\\n"}\n'];
      const loaded = await client.loadImage(Readable.from(produce()));
      assert.deepEqual(loaded, { names: ["app:1"], ids: [] });
      assert.ok(seenBeforeLastPart, "the engine saw the first bytes before the client had produced the rest");
      const [req] = engine.requests;
      assert.equal(req!.method, "POST");
      assert.equal(req!.pathname, "/images/load");
      assert.equal(req!.query.toString(), "quiet=1");
      assert.equal(req!.headers["content-type"], "application/x-tar");
      assert.equal(req!.headers["transfer-encoding"], "chunked");
      assert.equal(req!.headers["content-length"], undefined);
      assert.ok(req!.ended);
      assert.ok(Buffer.concat(req!.chunks).equals(Buffer.concat(parts)), "the body arrived byte for byte");
      await engine.waitForNoConnections();
    });
  });
}

describe("answers", () => {
  let engine: FakeEngine;
  let client: EngineClient;
  before(async () => {
    engine = await startFakeEngine("unix");
    client = new EngineClient({ env: { DOCKER_HOST: engine.host } });
  });
  after(() => engine.stop());

  test("a 404 on save is IMAGE_NOT_FOUND naming the image, the engine and what it said", async () => {
    engine.images.set("here:1", Buffer.from("tar"));
    await assert.rejects(client.saveImage(["missing/app:2"]), (err: unknown) => {
      assert.ok(err instanceof ImageNotFoundError, String(err));
      assert.equal(err.code, "IMAGE_NOT_FOUND");
      assert.equal(err.message, `the Docker engine at ${engine.host} has no image missing/app:2 (reference does not exist); check the name and tag, or load the image first`);
      return true;
    });
    await assert.rejects(client.saveImage(["here:1", "gone:3"]), (err: unknown) => {
      isCode("IMAGE_NOT_FOUND")(err);
      assert.match((err as Error).message, /lacks at least one of the images here:1, gone:3 \(reference does not exist\); check the names and tags, or load the images first$/);
      return true;
    });
    await engine.waitForNoConnections();
  });

  test("the names the engine reports are collected, however its messages are cut", async (t) => {
    const saved = engine.loadReply;
    t.after(() => { engine.loadReply = saved; });
    engine.loadReply = [
      '{"stream":"Loaded image: a',
      'pp:1\\n"}{"stream":"Loaded image ID: sha256:3f1c\\n"}',
      '\n{"stream":"Loaded image: localhost/x:1,localhost/x:2\\n"}\r\n{"progress":"{}"}\n',
    ];
    const loaded = await client.loadImage(Readable.from([Buffer.from("tar")]));
    assert.deepEqual(loaded, { names: ["app:1", "localhost/x:1", "localhost/x:2"], ids: ["sha256:3f1c"] });
  });

  test("an error message inside a 200 load answer is thrown, naming the engine's message", async (t) => {
    const saved = engine.loadReply;
    t.after(() => { engine.loadReply = saved; });
    engine.loadReply = [
      '{"stream":"Loaded image: early:1\\n"}\n',
      '{"errorDetail":{"message":"open /var/lib/docker/tmp/docker-import-1/repositories: no such file or directory"},"error":"short form"}\n',
    ];
    await assert.rejects(client.loadImage(Readable.from([Buffer.from("not a tar")])), (err: unknown) => {
      assert.ok(err instanceof EngineError, String(err));
      assert.equal(err.code, "ENGINE");
      assert.equal(err.message, `the Docker engine at ${engine.host} could not load the image: open /var/lib/docker/tmp/docker-import-1/repositories: no such file or directory`);
      return true;
    });
    engine.loadReply = ['{"error":"only the short form"}'];
    await assert.rejects(client.loadImage(Readable.from([Buffer.from("x")])), /could not load the image: only the short form$/);
  });

  test("a 200 load answer that is not JSON messages is an ENGINE error quoting it", async (t) => {
    const saved = engine.loadReply;
    t.after(() => { engine.loadReply = saved; });
    for (const reply of [["Loaded image: app:1\n"], ['{"stream":"Loaded image: app:1\\n"']]) {
      engine.loadReply = reply;
      await assert.rejects(client.loadImage(Readable.from([Buffer.from("x")])), (err: unknown) => {
        isCode("ENGINE")(err);
        assert.match((err as Error).message, /answered the image load with something other than JSON messages: .*Loaded image: app:1/);
        return true;
      });
    }
  });

  test("other failures are ENGINE errors with the status and the engine's message", async () => {
    engine.handle("/images/load", (req, res) => {
      req.resume();
      req.on("end", () => sendJson(res, 500, { message: "write /var/lib/docker/tmp/x: no space left on device" }));
    });
    engine.handle("/_ping", (_req, res) => {
      res.writeHead(503, { "Content-Type": "text/plain" });
      res.end("engine is shutting down\nmore detail\n");
    });
    await assert.rejects(client.loadImage(Readable.from([Buffer.from("tar")])), (err: unknown) => {
      assert.ok(err instanceof EngineError, String(err));
      assert.equal(err.status, 500);
      assert.equal(err.message, `the Docker engine at ${engine.host} failed to load an image (HTTP 500: write /var/lib/docker/tmp/x: no space left on device)`);
      return true;
    });
    await assert.rejects(client.ping(), (err: unknown) => {
      assert.ok(err instanceof EngineError, String(err));
      assert.equal(err.status, 503);
      assert.match(err.message, /failed to answer a ping \(HTTP 503: engine is shutting down\)$/);
      return true;
    });
    await engine.waitForNoConnections();
  });
});

describe("no engine", () => {
  function assertUnreachable(display: string, reason: RegExp) {
    return (err: unknown): boolean => {
      assert.ok(err instanceof EngineError, `expected an EngineError, got ${String(err)}`);
      assert.equal(err.code, "ENGINE");
      assert.ok(err.message.startsWith(`the Docker engine at ${display} cannot be reached (`), err.message);
      assert.match(err.message, reason);
      assert.match(err.message, /start it .*or set DOCKER_HOST/);
      assert.ok(!err.message.includes("\n"));
      assert.equal(err.status, undefined);
      return true;
    };
  }

  test("no socket at the path: one ENGINE error naming the address", async (t) => {
    const dir = await tmpDir(t);
    const socket = join(dir, "nothing-here.sock");
    const client = new EngineClient({ env: { DOCKER_HOST: `unix://${socket}` } });
    const check = assertUnreachable(`unix://${socket}`, new RegExp(`\\(no socket exists at ${socket}\\)`));
    await assert.rejects(client.ping(), check);
    await assert.rejects(client.saveImage(["app:1"]), check);
    const tar = new PassThrough();
    tar.end(Buffer.from("tar"));
    await assert.rejects(client.loadImage(tar), check);
  });

  test("a socket path nobody listens on, and a tcp port nobody listens on: refused", async (t) => {
    const dir = await tmpDir(t);
    const stale = join(dir, "stale.sock");
    await writeFile(stale, "");
    await assert.rejects(new EngineClient({ env: { DOCKER_HOST: `unix://${stale}` } }).ping(),
      assertUnreachable(`unix://${stale}`, /\(the connection was refused\)/));
    const port = await freePort();
    await assert.rejects(new EngineClient({ env: { DOCKER_HOST: `tcp://127.0.0.1:${port}` } }).saveImage(["app:1"]),
      assertUnreachable(`tcp://127.0.0.1:${port}`, /\(the connection was refused\)/));
  });
});

describe("a failing upload", () => {
  let engine: FakeEngine;
  let client: EngineClient;
  before(async () => {
    engine = await startFakeEngine("unix");
    client = new EngineClient({ env: { DOCKER_HOST: engine.host } });
  });
  after(() => engine.stop());

  test("the tar's own GantryError is what loadImage throws, and the engine never sees the body end", async () => {
    engine.requests.length = 0;
    const bad = new DigestMismatchError("layer 2 of app:1 does not match its diff_id");
    async function* produce(): AsyncGenerator<Buffer> {
      yield randomBytes(50_000);
      await waitUntil(() => (engine.requests[0]?.chunks.length ?? 0) > 0);
      throw bad;
    }
    await assert.rejects(client.loadImage(Readable.from(produce())), (err: unknown) => err === bad);
    await engine.waitForNoConnections();
    assert.equal(engine.requests[0]?.ended, false, "a truncated tar must not reach the engine as a complete one");
  });

  test("any other failure of the tar is an IO error saying so", async () => {
    async function* produce(): AsyncGenerator<Buffer> {
      yield Buffer.from("first");
      throw new Error("EIO: i/o error, read");
    }
    await assert.rejects(client.loadImage(Readable.from(produce())), (err: unknown) => {
      isCode("IO")(err);
      assert.equal((err as Error).message, `the image tar being sent to the Docker engine at ${engine.host} could not be read: EIO: i/o error, read`);
      return true;
    });
    await engine.waitForNoConnections();
  });
});

describe("an engine that breaks off", () => {
  let engine: FakeEngine;
  let client: EngineClient;
  before(async () => {
    engine = await startFakeEngine("unix");
    client = new EngineClient({ env: { DOCKER_HOST: engine.host } });
  });
  after(() => engine.stop());

  /** A tar far larger than any socket buffer, made as it is read. */
  function endlessTar(): Readable {
    let sent = 0;
    return new Readable({
      read() {
        sent += 65_536;
        this.push(sent > 256 * 1024 * 1024 ? null : Buffer.alloc(65_536, 7));
      },
    });
  }

  for (const when of ["before answering", "after it began to answer"] as const) {
    test(`dropping the connection during the upload, ${when}, is an ENGINE error, not the tar's fault`, { timeout: 20_000 }, async () => {
      engine.handle("/images/load", (req, res) => {
        req.once("data", () => {
          if (when === "after it began to answer") {
            res.writeHead(200, { "Content-Type": "application/json" });
            res.write('{"stream":"Loading layer"}\n');
          }
          setTimeout(() => req.socket.destroy(), 20);
        });
      });
      const tar = endlessTar();
      await assert.rejects(client.loadImage(tar), (err: unknown) => {
        isCode("ENGINE")(err);
        assert.match((err as Error).message, new RegExp(`^the connection to the Docker engine at ${engine.host} broke while asking it to load an image \\((ECONNRESET|EPIPE)\\); check that the engine is still running and try again$`));
        return true;
      });
      assert.ok(tar.destroyed, "the tar is let go");
      await engine.waitForNoConnections();
    });
  }

  test("a save that breaks off before the caller reads it fails the stream when read, without crashing", { timeout: 20_000 }, async () => {
    engine.handle("/images/get", (_req, res) => {
      res.writeHead(200, { "Content-Type": "application/x-tar" });
      res.write(Buffer.alloc(1000, 1));
      setTimeout(() => res.socket?.destroy(), 20);
    });
    const stream = await client.saveImage(["app:1"]);
    await engine.waitForNoConnections();
    await new Promise((resolve) => setTimeout(resolve, 50));
    await assert.rejects(readAll(stream), (err: unknown) => {
      isCode("ENGINE")(err);
      assert.match((err as Error).message, /broke while asking it to save app:1 \(ECONNRESET\)/);
      return true;
    });
  });

  test("a refusal sent before the upload is over is reported with the engine's message", { timeout: 20_000 }, async () => {
    engine.requests.length = 0;
    engine.handle("/images/load", (req, res) => {
      // Refuses at the first bytes but, like dockerd, reads the rest before closing: a server that
      // closes on unread data resets the connection, and the refusal could be lost on the way.
      req.once("data", () => {
        res.writeHead(400, { "Content-Type": "application/json" });
        res.write('{"message":"the tar is not an image"}\n');
        req.on("end", () => res.end());
      });
    });
    let produced = 0;
    const tar = new Readable({
      read() {
        produced += 65_536;
        this.push(produced > 4 * 1024 * 1024 ? null : Buffer.alloc(65_536, 7));
      },
    });
    await assert.rejects(client.loadImage(tar), (err: unknown) => {
      assert.ok(err instanceof EngineError, String(err));
      assert.equal(err.status, 400);
      assert.match(err.message, /failed to load an image \(HTTP 400: the tar is not an image\)$/);
      return true;
    });
    await engine.waitForNoConnections();
  });
});

describe("abort and hanging engines", { timeout: 30_000 }, () => {
  let engine: FakeEngine;
  let client: EngineClient;
  before(async () => {
    engine = await startFakeEngine("unix");
    client = new EngineClient({ env: { DOCKER_HOST: engine.host }, pingTimeoutMs: 60_000 });
    // /_ping never answers; /images/get sends the start of a tar and then stalls.
    engine.handle("/_ping", (req) => { req.resume(); });
    engine.handle("/images/get", (_req, res) => {
      res.writeHead(200, { "Content-Type": "application/x-tar" });
      res.write(Buffer.alloc(4096, 1));
    });
  });
  after(() => engine.stop());

  test("an already aborted signal sends nothing and destroys the tar", async () => {
    engine.requests.length = 0;
    const controller = new AbortController();
    controller.abort();
    const tar = new PassThrough();
    await assert.rejects(client.ping(controller.signal), isCode("ABORTED"));
    await assert.rejects(client.saveImage(["app:1"], controller.signal), isCode("ABORTED"));
    await assert.rejects(client.loadImage(tar, controller.signal), isCode("ABORTED"));
    assert.ok(tar.destroyed);
    assert.equal(engine.requests.length, 0);
  });

  test("abort while waiting for an engine that never answers: ABORTED at once, connection closed", async () => {
    const controller = new AbortController();
    const pinging = client.ping(controller.signal);
    await waitUntil(() => engine.openConnections() > 0);
    const started = Date.now();
    controller.abort();
    await assert.rejects(pinging, isCode("ABORTED"));
    assert.ok(Date.now() - started < 5_000, "the abort did not wait for the 60 s ping timeout");
    await engine.waitForNoConnections();
  });

  test("an engine that never answers a ping fails it after pingTimeoutMs", async () => {
    const impatient = new EngineClient({ env: { DOCKER_HOST: engine.host }, pingTimeoutMs: 200 });
    await assert.rejects(impatient.ping(), (err: unknown) => {
      isCode("ENGINE")(err);
      assert.equal((err as Error).message, `the Docker engine at ${engine.host} did not answer within 200 ms when asked to answer a ping; check that it is running and responsive, or set DOCKER_HOST to another engine`);
      return true;
    });
    await engine.waitForNoConnections();
  });

  test("abort while a save streams: the stream fails with ABORTED and the connection closes", async () => {
    const controller = new AbortController();
    const stream = await client.saveImage(["app:1"], controller.signal);
    const reading = (async () => {
      for await (const _chunk of stream) controller.abort();
    })();
    await assert.rejects(reading, isCode("ABORTED"));
    assert.ok(stream.destroyed);
    await engine.waitForNoConnections();
  });

  test("destroying the save stream half way closes the connection", async () => {
    const stream = await client.saveImage(["app:1"]);
    await new Promise((resolve) => stream.once("data", resolve));
    stream.destroy();
    await engine.waitForNoConnections();
  });

  test("abort while a load uploads: ABORTED, the tar destroyed, the body never completed", async () => {
    engine.requests.length = 0;
    const controller = new AbortController();
    const tar = new PassThrough();
    tar.write(randomBytes(10_000));
    const loading = client.loadImage(tar, controller.signal);
    await waitUntil(() => (engine.requests[0]?.chunks.length ?? 0) > 0);
    controller.abort();
    await assert.rejects(loading, isCode("ABORTED"));
    assert.ok(tar.destroyed);
    await engine.waitForNoConnections();
    assert.equal(engine.requests[0]?.ended, false);
  });

  test("after an abort nothing keeps a process alive: a child exits on its own", async () => {
    const engineModule = new URL("../../src/transports/docker-daemon/engine.js", import.meta.url).href;
    const script = `
      import { EngineClient } from ${JSON.stringify(engineModule)};
      const client = new EngineClient({ pingTimeoutMs: 60_000 });
      const first = new AbortController();
      setTimeout(() => first.abort(), 100);
      await client.ping(first.signal).catch((err) => console.log("ping", err.code));
      const second = new AbortController();
      const stream = await client.saveImage(["app:1"], second.signal);
      stream.once("data", () => second.abort());
      await new Promise((resolve) => stream.once("error", (err) => { console.log("save", err.code); resolve(); }));
    `;
    // ping's own 60 s timer, a socket or a listener left behind would hold the child past the timeout.
    const result = await run(process.execPath, ["--input-type=module", "-e", script], {
      env: { ...process.env, DOCKER_HOST: engine.host }, timeoutMs: 20_000,
    });
    assert.equal(result.stdout.toString("utf8"), "ping ABORTED\nsave ABORTED\n");
    await engine.waitForNoConnections();
  });
});

describe("the JSON message splitter", () => {
  test("objects come out whole whether fed a character at a time or all at once, braces in strings and all", () => {
    const text = '{"stream":"a}{b\\"c"}\n{"status":"x","progressDetail":{"current":1,"list":[{"a":"]"}]}}{"error":"e"}\r\n';
    const expected = [{ stream: 'a}{b"c' }, { status: "x", progressDetail: { current: 1, list: [{ a: "]" }] } }, { error: "e" }];
    const bytewise = new JsonMessageSplitter();
    const pieces = [...text].flatMap((c) => bytewise.push(c));
    bytewise.end();
    assert.deepEqual(pieces, expected);
    const whole = new JsonMessageSplitter();
    assert.deepEqual(whole.push(text), expected);
    whole.end();
  });

  test("anything but a stream of JSON objects is refused", () => {
    assert.throws(() => new JsonMessageSplitter().push("[1]"), MessageStreamError);
    assert.throws(() => new JsonMessageSplitter().push('{"a":1,}'), MessageStreamError);
    const cut = new JsonMessageSplitter();
    assert.deepEqual(cut.push('{"a":1}{"b":'), [{ a: 1 }]);
    assert.throws(() => cut.end(), /stopped inside a message: "\{\\"b\\":"/);
  });
});
