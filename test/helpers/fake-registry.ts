import { createHash, randomUUID } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { TestContext } from "node:test";

/**
 * An in-process stand-in for a distribution registry, for unit tests of the registry
 * client: fast, deterministic, and scriptable in ways a real registry is not. It records
 * every request it sees, can be told to fail chosen requests (a status, a dropped
 * connection, a response cut mid-body), speaks Basic or Bearer auth with its own token
 * endpoint, keeps blobs and upload sessions the way the distribution API describes them,
 * and can send blob GETs to a second fake acting as object storage. It listens on
 * 127.0.0.1 only, on a port the system picks. Only blobs are modelled, not manifests.
 */

export interface RecordedRequest {
  readonly method: string;
  /** Path and query as sent: "/v2/app/blobs/uploads/ID?_state=2". */
  readonly url: string;
  /** The path without the query. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  readonly authorization: string | undefined;
  readonly body: Buffer;
  /** What the fake did: the status it answered, or the fault's kind ("reset", "cut", "stall", "length"). */
  answer: number | "reset" | "cut" | "stall" | "length";
}

/** Which requests a fault applies to; every field given must match. */
export interface RequestMatch {
  readonly method?: string;
  /** Tested against the path without the query. */
  readonly path?: RegExp;
}

/**
 * What a scripted fault does to a request:
 * - status: answers this instead of handling the request;
 * - reset: drops the connection instead of answering;
 * - cut: handles the request, then drops the connection after `after` bytes of the answer's body;
 * - stall: handles the request, then sends nothing more after `after` bytes of the answer's
 *   body (before the headers, when `after` is absent), holding the connection open;
 * - length: handles the request but announces a Content-Length `by` bytes off the body's,
 *   sends the body whole and closes the connection.
 * `keepBody` (status, reset) lets the registry take in that many bytes of the request's
 * body before failing, as a registry that received part of an upload chunk does.
 */
export type Fault =
  | { readonly kind: "status"; readonly status: number; readonly headers?: Readonly<Record<string, string>>; readonly keepBody?: number }
  | { readonly kind: "reset"; readonly keepBody?: number }
  | { readonly kind: "cut"; readonly after: number }
  | { readonly kind: "stall"; readonly after?: number }
  | { readonly kind: "length"; readonly by: number };

export interface FaultTiming {
  /** Matching requests let through before the fault starts (the Nth request: skip N-1). */
  readonly skip?: number;
  /** How many matching requests it hits; default 1. */
  readonly times?: number;
  /** Hits only every Nth matching request after the skipped ones (the Nth, 2Nth, …); default every one. */
  readonly every?: number;
}

export type FakeAuth =
  | { readonly kind: "none" }
  | { readonly kind: "basic"; readonly user: string; readonly password: string }
  | {
    readonly kind: "bearer";
    readonly service: string;
    /** Credentials the token endpoint demands; without them it serves anyone. */
    readonly user?: string;
    readonly password?: string;
    /** Repositories for which tokens are issued but grant nothing, as for a user without access. */
    readonly denied?: readonly string[];
  };

export interface FakeRegistryOptions {
  readonly auth?: FakeAuth;
  /** Upload Locations as paths ("/v2/…") rather than absolute URLs. */
  readonly relativeLocations?: boolean;
  /** Whether blob GETs honour `Range: bytes=N-` with a 206 (default true), as distribution does. */
  readonly ranges?: boolean;
}

export interface TokenRequest {
  readonly service: string | null;
  readonly scopes: string[];
  readonly authorization: string | undefined;
}

interface Answer {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Buffer;
}

interface ScriptedFault {
  readonly match: RequestMatch;
  readonly fault: Fault;
  readonly every: number;
  skip: number;
  times: number;
  seen: number;
}

interface UploadSession {
  readonly repository: string;
  bytes: Buffer;
  /** Changes with every chunk: a Location from before a chunk is stale, as distribution's _state is. */
  state: number;
}

const DIGEST_PATTERN = "sha256:[0-9a-f]{64}";
const BLOB_PATH = new RegExp(`^/v2/(.+)/blobs/(${DIGEST_PATTERN})$`);
const UPLOADS_PATH = /^\/v2\/(.+)\/blobs\/uploads\/$/;
const SESSION_PATH = /^\/v2\/(.+)\/blobs\/uploads\/([0-9a-f-]+)$/;
const STORAGE_PATH = new RegExp(`^/storage/(${DIGEST_PATTERN})$`);

export function digestOf(bytes: Buffer): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

export class FakeRegistry {
  readonly requests: RecordedRequest[] = [];
  readonly tokenRequests: TokenRequest[] = [];
  private readonly faults: ScriptedFault[] = [];
  private readonly blobs = new Map<string, Map<string, Buffer>>();
  private readonly sessions = new Map<string, UploadSession>();
  /** Blobs this server holds as "object storage" for another fake's redirects. */
  private readonly stored = new Map<string, Buffer>();
  private readonly tokens = new Map<string, Set<string>>();
  private storage: FakeRegistry | undefined;
  private readonly auth: FakeAuth;

  private constructor(private readonly server: Server, readonly port: number, private readonly opts: FakeRegistryOptions) {
    this.auth = opts.auth ?? { kind: "none" };
  }

  static async start(opts: FakeRegistryOptions = {}): Promise<FakeRegistry> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", resolve);
    });
    const fake = new FakeRegistry(server, (server.address() as AddressInfo).port, opts);
    server.on("request", (req: IncomingMessage, res: ServerResponse) => {
      fake.serve(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500).end(String(err));
        else res.destroy();
      });
    });
    return fake;
  }

  /** "127.0.0.1:PORT", as image references spell a registry. */
  get host(): string { return `127.0.0.1:${this.port}`; }
  get url(): string { return `http://${this.host}`; }

  /** Makes the next matching requests fail as `fault` says. */
  fail(match: RequestMatch, fault: Fault, timing: FaultTiming = {}): void {
    this.faults.push({ match, fault, skip: timing.skip ?? 0, times: timing.times ?? 1, every: timing.every ?? 1, seen: 0 });
  }

  /** Blob GETs answer 307 to `storage`, as registries send clients to object storage. */
  redirectBlobsTo(storage: FakeRegistry): void {
    this.storage = storage;
  }

  /** Stores `bytes` in `repository`; returns their digest. */
  putBlob(repository: string, bytes: Buffer): string {
    const digest = digestOf(bytes);
    this.putBlobAs(repository, digest, bytes);
    return digest;
  }

  /** Stores `bytes` under a digest of the caller's choosing (a registry serving damaged data). */
  putBlobAs(repository: string, digest: string, bytes: Buffer): void {
    this.repositoryBlobs(repository).set(digest, bytes);
  }

  blob(repository: string, digest: string): Buffer | undefined {
    return this.blobs.get(repository)?.get(digest);
  }

  /** The requests matching `match`, in the order they came. */
  requestsMatching(match: RequestMatch): RecordedRequest[] {
    return this.requests.filter((r) => matches(match, r));
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const parsed = new URL(req.url ?? "/", this.url);
    const recorded: RecordedRequest = {
      method: req.method ?? "GET", url: req.url ?? "/", path: parsed.pathname, query: parsed.searchParams,
      headers: req.headers, authorization: req.headers.authorization, body, answer: 0,
    };
    this.requests.push(recorded);
    const fault = this.takeFault(recorded);
    if (fault?.kind === "status" || fault?.kind === "reset") {
      if (fault.keepBody !== undefined) this.handle({ ...recorded, body: body.subarray(0, fault.keepBody) });
      if (fault.kind === "reset") {
        recorded.answer = "reset";
        req.socket.destroy();
        return;
      }
      recorded.answer = fault.status;
      writeAnswer(res, { status: fault.status, headers: fault.headers ?? {}, body: errorBody("FAULT", "a scripted failure") });
      return;
    }
    if (fault?.kind === "stall" && fault.after === undefined) {
      recorded.answer = "stall";
      return;
    }
    const answer = this.handle(recorded);
    if (fault?.kind === "cut" || fault?.kind === "stall") {
      recorded.answer = fault.kind;
      cutAnswer(res, answer, fault.after ?? 0, fault.kind === "stall");
      return;
    }
    if (fault?.kind === "length") {
      recorded.answer = "length";
      misstateLength(res, answer, fault.by);
      return;
    }
    recorded.answer = answer.status;
    writeAnswer(res, answer, recorded.method === "HEAD");
  }

  private takeFault(req: RecordedRequest): Fault | undefined {
    for (const scripted of this.faults) {
      if (scripted.times === 0 || !matches(scripted.match, req)) continue;
      if (scripted.skip > 0) {
        scripted.skip--;
        continue;
      }
      if (++scripted.seen % scripted.every !== 0) continue;
      scripted.times--;
      return scripted.fault;
    }
    return undefined;
  }

  private handle(req: RecordedRequest): Answer {
    if (req.path === "/token") return this.issueToken(req);
    const stored = STORAGE_PATH.exec(req.path);
    if (stored) return this.serveStored(req, stored[1]!);
    const refused = this.refuse(req);
    if (refused) return refused;
    if (req.path === "/v2/") return json(200, {});
    let m: RegExpExecArray | null;
    if ((m = UPLOADS_PATH.exec(req.path)) && req.method === "POST") return this.startUpload(req, m[1]!);
    if ((m = SESSION_PATH.exec(req.path))) return this.continueUpload(req, m[1]!, m[2]!);
    if ((m = BLOB_PATH.exec(req.path)) && (req.method === "GET" || req.method === "HEAD")) return this.serveBlob(req, m[1]!, m[2]!);
    return json(404, errorDoc("NOT_FOUND", `nothing at ${req.method} ${req.path}`));
  }

  // ---- authentication ----

  /** The 401 a request without the right credentials or token gets; undefined when it may go on. */
  private refuse(req: RecordedRequest): Answer | undefined {
    if (this.auth.kind === "none") return undefined;
    if (this.auth.kind === "basic") {
      return req.authorization === basicValue(this.auth.user, this.auth.password)
        ? undefined
        : challenge(`Basic realm="fake-registry"`);
    }
    const needed = neededAccess(req);
    const granted = this.tokens.get(/^Bearer (.+)$/.exec(req.authorization ?? "")?.[1] ?? "");
    if (granted && needed.every((n) => granted.has(n))) return undefined;
    const scope = needed.length > 0 ? `,scope="${scopeOfNeeds(needed)}"` : "";
    const error = granted ? `,error="insufficient_scope"` : "";
    return challenge(`Bearer realm="${this.url}/token",service="${this.auth.service}"${scope}${error}`);
  }

  private issueToken(req: RecordedRequest): Answer {
    if (this.auth.kind !== "bearer") return json(404, errorDoc("NOT_FOUND", "no token endpoint"));
    const scopes = req.query.getAll("scope");
    this.tokenRequests.push({ service: req.query.get("service"), scopes, authorization: req.authorization });
    if (this.auth.user !== undefined && req.authorization !== basicValue(this.auth.user, this.auth.password ?? "")) {
      return json(401, errorDoc("UNAUTHORIZED", "authentication required"));
    }
    const grants = new Set<string>();
    for (const scope of scopes) {
      const [kind, repository, actions] = splitScope(scope);
      if (kind !== "repository" || this.auth.denied?.includes(repository)) continue;
      for (const action of actions.split(",")) grants.add(`${repository}:${action}`);
    }
    const token = `token-${this.tokens.size + 1}`;
    this.tokens.set(token, grants);
    return json(200, { token, access_token: token, expires_in: 300 });
  }

  // ---- blobs ----

  private serveBlob(req: RecordedRequest, repository: string, digest: string): Answer {
    const bytes = this.blob(repository, digest);
    if (!bytes) return json(404, errorDoc("BLOB_UNKNOWN", `blob unknown to registry: ${digest}`));
    if (this.storage && req.method === "GET") {
      this.storage.stored.set(digest, bytes);
      return { status: 307, headers: { location: `${this.storage.url}/storage/${digest}?signature=s3cr3t` } };
    }
    return this.blobAnswer(req, bytes, { "docker-content-digest": digest });
  }

  /** The whole blob (200), or from the byte a `Range: bytes=N-` asks for (206) unless ranges are off. */
  private blobAnswer(req: RecordedRequest, bytes: Buffer, headers: Record<string, string> = {}): Answer {
    const from = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ""))?.[1];
    const type = { "content-type": "application/octet-stream", "accept-ranges": "bytes", ...headers };
    if (from !== undefined && this.opts.ranges !== false && Number(from) < bytes.length) {
      const part = bytes.subarray(Number(from));
      return {
        status: 206,
        headers: { ...type, "content-length": String(part.length), "content-range": `bytes ${from}-${bytes.length - 1}/${bytes.length}` },
        body: part,
      };
    }
    return { status: 200, headers: { ...type, "content-length": String(bytes.length) }, body: bytes };
  }

  /** Object storage takes its own signed URLs and refuses a registry's Authorization, as S3 does. */
  private serveStored(req: RecordedRequest, digest: string): Answer {
    if (req.authorization !== undefined) return json(400, errorDoc("InvalidArgument", "only one auth mechanism allowed"));
    const bytes = this.stored.get(digest);
    if (!bytes) return json(404, errorDoc("NoSuchKey", digest));
    return this.blobAnswer(req, bytes);
  }

  private startUpload(req: RecordedRequest, repository: string): Answer {
    const mount = req.query.get("mount");
    const from = req.query.get("from");
    if (mount && from && this.mayMount(req, from)) {
      const bytes = this.blob(from, mount);
      if (bytes) {
        this.repositoryBlobs(repository).set(mount, bytes);
        return { status: 201, headers: { location: this.location(`/v2/${repository}/blobs/${mount}`), "docker-content-digest": mount } };
      }
    }
    // Not mountable: distribution opens an ordinary upload instead.
    const id = randomUUID();
    const session: UploadSession = { repository, bytes: Buffer.alloc(0), state: 0 };
    this.sessions.set(id, session);
    return this.sessionAnswer(202, id, session);
  }

  private continueUpload(req: RecordedRequest, repository: string, id: string): Answer {
    const session = this.sessions.get(id);
    if (!session || session.repository !== repository) return json(404, errorDoc("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry"));
    if (req.method === "GET") return this.sessionAnswer(204, id, session);
    if (req.query.get("_state") !== String(session.state)) {
      return json(400, errorDoc("BLOB_UPLOAD_INVALID", "stale upload state: use the Location of the last answer"));
    }
    if (req.method === "PATCH") return this.appendChunk(req, id, session);
    if (req.method === "PUT") return this.commitUpload(req, id, session);
    return json(405, errorDoc("UNSUPPORTED", `${req.method} on an upload`));
  }

  private appendChunk(req: RecordedRequest, id: string, session: UploadSession): Answer {
    const range = /^(\d+)-(\d+)$/.exec(String(req.headers["content-range"] ?? ""));
    if (range && Number(range[1]) !== session.bytes.length) {
      return { ...json(416, errorDoc("RANGE_INVALID", `the upload holds ${session.bytes.length} bytes, not ${range[1]}`)), headers: this.sessionHeaders(id, session) };
    }
    session.bytes = Buffer.concat([session.bytes, req.body]);
    session.state++;
    return this.sessionAnswer(202, id, session);
  }

  private commitUpload(req: RecordedRequest, id: string, session: UploadSession): Answer {
    const digest = req.query.get("digest");
    const bytes = Buffer.concat([session.bytes, req.body]);
    if (!digest || digestOf(bytes) !== digest) {
      return json(400, errorDoc("DIGEST_INVALID", `the uploaded ${bytes.length} bytes are ${digestOf(bytes)}, not ${digest}`));
    }
    this.sessions.delete(id);
    this.repositoryBlobs(session.repository).set(digest, bytes);
    return { status: 201, headers: { location: this.location(`/v2/${session.repository}/blobs/${digest}`), "docker-content-digest": digest } };
  }

  private sessionAnswer(status: number, id: string, session: UploadSession): Answer {
    return { status, headers: this.sessionHeaders(id, session) };
  }

  /** Location with the session's current state, and Range as distribution spells it ("0-0" when empty). */
  private sessionHeaders(id: string, session: UploadSession): Record<string, string> {
    return {
      location: this.location(`/v2/${session.repository}/blobs/uploads/${id}?_state=${session.state}`),
      range: `0-${Math.max(session.bytes.length - 1, 0)}`,
      "docker-upload-uuid": id,
    };
  }

  private mayMount(req: RecordedRequest, from: string): boolean {
    if (this.auth.kind !== "bearer") return true;
    const token = /^Bearer (.+)$/.exec(req.authorization ?? "")?.[1];
    return this.tokens.get(token ?? "")?.has(`${from}:pull`) ?? false;
  }

  private location(path: string): string {
    return this.opts.relativeLocations ? path : `${this.url}${path}`;
  }

  private repositoryBlobs(repository: string): Map<string, Buffer> {
    let blobs = this.blobs.get(repository);
    if (!blobs) this.blobs.set(repository, blobs = new Map());
    return blobs;
  }
}

/** A fake registry on 127.0.0.1 that is closed when the test ends. */
export async function startFakeRegistry(t: TestContext, opts: FakeRegistryOptions = {}): Promise<FakeRegistry> {
  const fake = await FakeRegistry.start(opts);
  t.after(() => fake.close());
  return fake;
}

export function basicValue(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
}

function matches(match: RequestMatch, req: RecordedRequest): boolean {
  return (match.method === undefined || match.method === req.method) && (match.path === undefined || match.path.test(req.path));
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** "repo:pull" entries a request needs: pull to read, pull and push to write, pull on a mount's source. */
function neededAccess(req: RecordedRequest): string[] {
  const repository = /^\/v2\/(.+)\/blobs\//.exec(req.path)?.[1];
  if (!repository) return [];
  const reads = req.method === "GET" || req.method === "HEAD";
  return reads ? [`${repository}:pull`] : [`${repository}:pull`, `${repository}:push`];
}

function scopeOfNeeds(needed: readonly string[]): string {
  const repository = needed[0]!.slice(0, needed[0]!.lastIndexOf(":"));
  return `repository:${repository}:${needed.map((n) => n.slice(n.lastIndexOf(":") + 1)).join(",")}`;
}

/** "repository:a/b:pull,push" → ["repository", "a/b", "pull,push"]. */
function splitScope(scope: string): [string, string, string] {
  const first = scope.indexOf(":");
  const last = scope.lastIndexOf(":");
  return [scope.slice(0, first), scope.slice(first + 1, last), scope.slice(last + 1)];
}

function challenge(wwwAuthenticate: string): Answer {
  return { ...json(401, errorDoc("UNAUTHORIZED", "authentication required")), headers: { "www-authenticate": wwwAuthenticate } };
}

function errorDoc(code: string, message: string): unknown {
  return { errors: [{ code, message }] };
}

function errorBody(code: string, message: string): Buffer {
  return Buffer.from(JSON.stringify(errorDoc(code, message)));
}

function json(status: number, doc: unknown): Answer {
  return { status, headers: { "content-type": "application/json" }, body: Buffer.from(JSON.stringify(doc)) };
}

function writeAnswer(res: ServerResponse, answer: Answer, headOnly = false): void {
  const headers: Record<string, string> = { ...answer.headers };
  if (answer.body && headers["content-length"] === undefined) headers["content-length"] = String(answer.body.length);
  res.writeHead(answer.status, headers);
  res.end(headOnly ? undefined : answer.body);
}

/** Sends the headers (promising the whole body) and the first `after` bytes, then drops the connection (or, `hold`, keeps it silent). */
function cutAnswer(res: ServerResponse, answer: Answer, after: number, hold = false): void {
  const body = answer.body ?? Buffer.alloc(0);
  res.writeHead(answer.status, { ...answer.headers, "content-length": String(body.length) });
  res.flushHeaders();
  res.write(body.subarray(0, after), () => { if (!hold) setImmediate(() => res.destroy()); });
}

/** The answer with a Content-Length `by` bytes off, written to the socket as it is, then the connection closed. */
function misstateLength(res: ServerResponse, answer: Answer, by: number): void {
  const body = answer.body ?? Buffer.alloc(0);
  const headers = Object.entries({ ...answer.headers, "content-length": String(body.length + by), connection: "close" })
    .map(([name, value]) => `${name}: ${value}\r\n`).join("");
  const socket = res.socket!;
  socket.write(`HTTP/1.1 ${answer.status} X\r\n${headers}\r\n`);
  socket.end(body);
}
