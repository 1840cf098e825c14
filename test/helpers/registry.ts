import { spawn, execFile, type ChildProcess } from "node:child_process";
import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createNetServer } from "node:net";
import { X509Certificate, createPrivateKey, randomBytes, sign, type KeyObject } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile, mkdir } from "node:fs/promises";
import { openSync, closeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Readable } from "node:stream";
import { pack as tarPack } from "tar-stream";
import { sha256, type Digest } from "../../src/model/digest.js";
import type { Image } from "../../src/model/image.js";
import { makeLayer } from "../../src/image/layer.js";
import { imageFromParts } from "../../src/image/image.js";
import type { Compression } from "../../src/model/mediatypes.js";
import type { ImageConfigJson } from "../../src/model/oci.js";
import { compressor } from "../../src/compression/compression.js";

/**
 * Real registries for tests: the Debian `docker-registry` (CNCF distribution 2.8) on a free
 * loopback port with filesystem storage in a temporary directory, anonymous, with htpasswd
 * Basic auth, or with token auth served by a small JWT issuer in this process; and a
 * counting proxy to put in front of one, which can also fail chosen requests.
 */

const execFileP = promisify(execFile);

export interface Users { readonly [user: string]: string }

export type RegistryAuth =
  | { readonly kind: "none" }
  | { readonly kind: "htpasswd"; readonly users: Users }
  | { readonly kind: "token"; readonly users: Users };

export interface RunningRegistry {
  /** "127.0.0.1:PORT", as references spell it. */
  readonly host: string;
  readonly dir: string;
  /** Token requests served, with the scopes asked (token auth only). */
  readonly tokenRequests: { user: string | undefined; scopes: string[] }[];
  /** The requests the registry itself logged (its access log), in order. */
  served(): Promise<ServedRequest[]>;
  stop(): Promise<void>;
}

/** One line of docker-registry's access log. */
export interface ServedRequest {
  readonly method: string;
  /** Path and query, as the registry logged them. */
  readonly uri: string;
  readonly status: number;
}

export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== "object" || address === null) throw new Error("no port");
  return address.port;
}

export async function startRegistry(auth: RegistryAuth = { kind: "none" }): Promise<RunningRegistry> {
  const dir = await mkdtemp(join(tmpdir(), "gantry-registry-"));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const tokenRequests: RunningRegistry["tokenRequests"] = [];
  let authYaml = "";
  let tokenServer: Server | undefined;

  if (auth.kind === "htpasswd") {
    const lines: string[] = [];
    for (const [user, pass] of Object.entries(auth.users)) {
      const { stdout } = await execFileP("htpasswd", ["-Bbn", user, pass]);
      lines.push(stdout.trim());
    }
    await writeFile(join(dir, "htpasswd"), `${lines.join("\n")}\n`);
    authYaml = `auth:\n  htpasswd:\n    realm: gantry-test\n    path: ${join(dir, "htpasswd")}\n`;
  } else if (auth.kind === "token") {
    const issuer = await makeIssuer(dir);
    const tokenPort = await freePort();
    tokenServer = createHttpServer((req, res) => serveToken(req, res, issuer, auth.users, tokenRequests));
    await new Promise<void>((resolve) => tokenServer!.listen(tokenPort, "127.0.0.1", resolve));
    authYaml = [
      "auth:", "  token:",
      `    realm: http://127.0.0.1:${tokenPort}/token`,
      `    service: ${TOKEN_SERVICE}`,
      `    issuer: ${TOKEN_ISSUER}`,
      `    rootcertbundle: ${issuer.certPath}`, "",
    ].join("\n");
  }

  const config = [
    "version: 0.1",
    "log:", "  level: info",
    "storage:",
    `  filesystem: {rootdirectory: ${join(dir, "data")}}`,
    "  delete: {enabled: true}",
    "  maintenance: {uploadpurging: {enabled: false}}",
    "http:", `  addr: ${host}`,
    authYaml,
  ].join("\n");
  await writeFile(join(dir, "config.yml"), config);
  const log = openSync(join(dir, "registry.log"), "a");
  const child = spawn("docker-registry", ["serve", join(dir, "config.yml")], { stdio: ["ignore", log, log] });
  closeSync(log);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  const stop = async (): Promise<void> => {
    await stopChild(child, exited);
    if (tokenServer) await new Promise<void>((resolve) => tokenServer!.close(() => resolve()));
  };
  try {
    await waitUntilServing(`http://${host}/v2/`, child);
  } catch (err) {
    await stop();
    const logText = await readFile(join(dir, "registry.log"), "utf8").catch(() => "");
    await rm(dir, { recursive: true, force: true });
    throw new Error(`docker-registry did not start: ${(err as Error).message}\n${logText.slice(-2000)}`);
  }
  return {
    host, dir, tokenRequests,
    served: () => servedRequests(join(dir, "registry.log")),
    async stop() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The access log lines (`"POST /v2/… HTTP/1.1" 201 0 …`) of docker-registry's log. */
async function servedRequests(logPath: string): Promise<ServedRequest[]> {
  const text = await readFile(logPath, "utf8");
  const served: ServedRequest[] = [];
  for (const m of text.matchAll(/^\S+ - \S+ \[[^\]]+\] "(\w+) (\S+) HTTP\/[\d.]+" (\d{3}) /gm)) {
    served.push({ method: m[1]!, uri: m[2]!, status: Number(m[3]) });
  }
  return served;
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

async function waitUntilServing(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`it exited with status ${child.exitCode}`);
    try {
      const response = await fetch(url);
      await response.body?.cancel();
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`${url} did not answer within 20 s`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

// ---- token auth: a JWT issuer the registry trusts through its rootcertbundle ----

const TOKEN_SERVICE = "gantry-test-registry";
const TOKEN_ISSUER = "gantry-test-issuer";

interface Issuer { key: KeyObject; certDer: Buffer; certPath: string }

async function makeIssuer(dir: string): Promise<Issuer> {
  const keyPath = join(dir, "token.key");
  const certPath = join(dir, "token.pem");
  await execFileP("openssl", [
    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", keyPath, "-out", certPath,
    "-days", "2", "-subj", "/CN=gantry-test-token",
  ]);
  const key = createPrivateKey(await readFile(keyPath));
  const certDer = new X509Certificate(await readFile(certPath)).raw;
  return { key, certDer, certPath };
}

const b64url = (data: Buffer | string): string => Buffer.from(data).toString("base64url");

/** Grants every requested action to a known user, nothing to anonymous callers, 401 to wrong credentials. */
function serveToken(req: IncomingMessage, res: ServerResponse, issuer: Issuer, users: Users, log: RunningRegistry["tokenRequests"]): void {
  const url = new URL(req.url ?? "/", "http://token");
  const scopes = url.searchParams.getAll("scope");
  let user: string | undefined;
  const header = req.headers.authorization;
  if (header?.startsWith("Basic ")) {
    const decoded = Buffer.from(header.slice(6), "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    const name = decoded.slice(0, colon);
    if (colon < 0 || users[name] !== decoded.slice(colon + 1)) {
      res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ details: "wrong credentials" }));
      return;
    }
    user = name;
  }
  log.push({ user, scopes });
  const access = user === undefined ? [] : scopes.map((s) => {
    const [type, ...rest] = s.split(":");
    const actions = rest.pop() ?? "";
    return { type, name: rest.join(":"), actions: actions.split(",") };
  });
  const now = Math.floor(Date.now() / 1000);
  const head = { alg: "RS256", typ: "JWT", x5c: [issuer.certDer.toString("base64")] };
  const claims = {
    iss: TOKEN_ISSUER, aud: TOKEN_SERVICE, sub: user ?? "", exp: now + 300, nbf: now - 10, iat: now,
    jti: randomBytes(8).toString("hex"), access,
  };
  const input = `${b64url(JSON.stringify(head))}.${b64url(JSON.stringify(claims))}`;
  const token = `${input}.${b64url(sign("sha256", Buffer.from(input), issuer.key))}`;
  res.writeHead(200, { "content-type": "application/json" })
    .end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }));
}

// ---- a counting (and failing, on demand) proxy ----

export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  /** The Authorization header the client sent, if any. */
  readonly authorization?: string;
}

export interface CountingProxy {
  /** "127.0.0.1:PORT": use it as the registry host. */
  readonly host: string;
  readonly requests: SeenRequest[];
  /** Answers the next request matching `match` with `status` instead of forwarding it. */
  failNext(match: (r: SeenRequest) => boolean, status: number): void;
  /** Forwards the next request matching `match` but passes the answer's body through `alter`. */
  alterNext(match: (r: SeenRequest) => boolean, alter: (body: Buffer) => Buffer): void;
  /** Answers the next request matching `match` with a 307 to the same path on `otherHost`. */
  redirectNext(match: (r: SeenRequest) => boolean, otherHost: string): void;
  count(method: string, pathPattern?: RegExp): number;
  reset(): void;
  stop(): Promise<void>;
}

/**
 * `addAuthorization` makes the proxy present credentials of its own to the registry, as
 * blob storage behind a signed redirect URL does: its clients need send none.
 */
export async function startCountingProxy(target: string, opts: { addAuthorization?: string } = {}): Promise<CountingProxy> {
  const requests: SeenRequest[] = [];
  const redirects: { match: (r: SeenRequest) => boolean; otherHost: string }[] = [];
  const failures: { match: (r: SeenRequest) => boolean; status: number }[] = [];
  const alterations: { match: (r: SeenRequest) => boolean; alter: (body: Buffer) => Buffer }[] = [];
  const server = createHttpServer((req, res) => {
    const seen: SeenRequest = {
      method: req.method ?? "GET", path: req.url ?? "/",
      ...(req.headers.authorization !== undefined ? { authorization: req.headers.authorization } : {}),
    };
    requests.push(seen);
    const redirect = redirects.findIndex((r) => r.match(seen));
    if (redirect !== -1) {
      const { otherHost } = redirects.splice(redirect, 1)[0]!;
      req.resume();
      req.on("end", () => res.writeHead(307, { location: `http://${otherHost}${seen.path}`, "content-length": "0" }).end());
      return;
    }
    const failure = failures.findIndex((f) => f.match(seen));
    if (failure !== -1) {
      const { status } = failures.splice(failure, 1)[0]!;
      req.resume();
      req.on("end", () => res.writeHead(status, { "content-type": "application/json" })
        .end(JSON.stringify({ errors: [{ code: "UNAVAILABLE", message: "injected by the test proxy" }] })));
      return;
    }
    const alteration = alterations.findIndex((a) => a.match(seen));
    const alter = alteration === -1 ? undefined : alterations.splice(alteration, 1)[0]!.alter;
    const [hostname, port] = target.split(":") as [string, string];
    // The Host header is kept, so the registry's Location headers point back at the proxy.
    const headers = { ...req.headers, ...(opts.addAuthorization ? { authorization: opts.addAuthorization } : {}) };
    const upstream = httpRequest({ hostname, port: Number(port), method: req.method, path: req.url, headers }, (up) => {
      if (!alter) {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
        return;
      }
      const parts: Buffer[] = [];
      up.on("data", (c: Buffer) => parts.push(c));
      up.on("end", () => {
        const body = alter(Buffer.concat(parts));
        res.writeHead(up.statusCode ?? 502, { ...up.headers, "content-length": String(body.length) }).end(body);
      });
    });
    upstream.on("error", () => { if (!res.headersSent) res.writeHead(502); res.end(); });
    req.pipe(upstream);
  });
  return {
    host: await listenOnLoopback(server),
    requests,
    failNext(match, status) { failures.push({ match, status }); },
    alterNext(match, alter) { alterations.push({ match, alter }); },
    redirectNext(match, otherHost) { redirects.push({ match, otherHost }); },
    count(method, pathPattern) {
      return requests.filter((r) => r.method === method && (!pathPattern || pathPattern.test(r.path))).length;
    },
    reset() { requests.length = 0; },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Starts `server` on 127.0.0.1, on a port the system picks; returns "127.0.0.1:PORT". */
export async function listenOnLoopback(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (typeof address !== "object" || address === null) throw new Error("no port");
  return `127.0.0.1:${address.port}`;
}

// ---- small images to push ----

export interface TestImageOptions {
  /** File name → contents of the one layer. */
  files?: Record<string, string | Buffer>;
  architecture?: string;
  compression?: Compression;
  /** A label that makes the config (and so the image) unique. */
  label?: string;
}

/** Packs `files` into a tar (sorted, fixed times) and returns stored bytes and digests. */
async function packFiles(files: Record<string, string | Buffer>, compression: Compression): Promise<{ stored: Buffer; digest: Digest; diffId: Digest }> {
  const pack = tarPack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on("data", (c: unknown) => { chunks.push(c as Buffer); });
    pack.on("end", resolve);
    pack.on("error", reject);
  });
  for (const name of Object.keys(files).sort()) {
    pack.entry({ name, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0 }, files[name]!);
  }
  pack.finalize();
  await done;
  const tar = Buffer.concat(chunks);
  const stored = await squeeze(tar, compression);
  return { stored, digest: sha256(stored), diffId: sha256(tar) };
}

async function squeeze(data: Buffer, compression: Compression): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of Readable.from([data]).pipe(compressor(compression))) out.push(c as Buffer);
  return Buffer.concat(out);
}

/** A one-layer image whose blobs live in memory; its layer opens count in `opens`. */
export async function makeTestImage(opts: TestImageOptions = {}): Promise<Image & { opens: { count: number } }> {
  const compression = opts.compression ?? "gzip";
  const layerData = await packFiles(opts.files ?? { "hello.txt": "hello from gantry\n" }, compression);
  const opens = { count: 0 };
  const layer = makeLayer({
    digest: layerData.digest, diffId: layerData.diffId, size: layerData.stored.length, compression,
    describe: "the test layer",
    openRaw: () => { opens.count++; return Promise.resolve(Readable.from([layerData.stored])); },
  });
  const config: ImageConfigJson = {
    architecture: opts.architecture ?? "amd64",
    os: "linux",
    created: "1970-01-01T00:00:01Z",
    config: { Cmd: ["/hello"], ...(opts.label ? { Labels: { test: opts.label } } : {}) },
    rootfs: { type: "layers", diff_ids: [layerData.diffId] },
    history: [{ created: "1970-01-01T00:00:01Z", created_by: "gantry test" }],
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  return { ...imageFromParts({ configBytes, config, layers: [layer] }, "the test config"), opens };
}

/** Reads every layer of `image` to the end (each verifies itself), returning their sizes. */
export async function drainLayers(image: Image): Promise<number[]> {
  const sizes: number[] = [];
  for (const layer of image.layers) {
    let size = 0;
    for await (const c of await layer.open()) size += (c as Buffer).length;
    sizes.push(size);
  }
  return sizes;
}

/** `skopeo inspect` of a loopback registry image, parsed. */
export async function skopeoInspect(ref: string, extra: string[] = []): Promise<{ Digest: string; Architecture?: string; Layers: string[] }> {
  const { stdout } = await execFileP("skopeo", ["inspect", "--tls-verify=false", ...extra, ref], { maxBuffer: 16 * 1024 * 1024 });
  return JSON.parse(stdout) as { Digest: string; Layers: string[] };
}

export async function skopeo(args: string[]): Promise<string> {
  const { stdout } = await execFileP("skopeo", args, { maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

/** A docker config directory holding `config` as config.json, for DOCKER_CONFIG. */
export async function dockerConfigDir(parent: string, config: unknown): Promise<string> {
  const dir = join(parent, `docker-config-${randomBytes(4).toString("hex")}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "config.json"), JSON.stringify(config));
  return dir;
}
