import type { Readable } from "node:stream";
import { Authenticator, type Scope } from "./auth.js";
import { findCredentials, type Credentials } from "./credentials.js";
import { registryBaseUrl } from "./endpoint.js";
import { discard, send, type HttpMethod, type RetryWait } from "./http.js";

export interface ClientOptions {
  /** `USER:PASS`; otherwise the docker config files and credential helpers are asked. */
  creds?: string;
  /** false: speak plain HTTP to a non-loopback registry. */
  tlsVerify?: boolean;
  signal?: AbortSignal;
  /** Where to read DOCKER_CONFIG, REGISTRY_AUTH_FILE and HOME from (tests); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** How to wait between retries (tests); default a real sleep. */
  retryWait?: RetryWait;
}

export interface ClientRequest {
  readonly method: HttpMethod;
  /** A path ("/v2/…") or an absolute URL the registry gave us (an upload's Location). */
  readonly url: string;
  readonly scopes: readonly Scope[];
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Buffer | Readable;
  readonly idempotent: boolean;
  /** Aborts this request as well as everything the client's own signal aborts. */
  readonly signal?: AbortSignal;
}

/**
 * A session with one registry: the `/v2/` ping (once, on first use), credentials (looked up
 * once), tokens per scope, and the retry-on-401 rule. Operations in pull.ts and push.ts
 * speak through `request` and never see authentication.
 */
export class RegistryClient {
  readonly baseUrl: string;
  readonly signal: AbortSignal | undefined;
  private readonly auth: Authenticator;
  private credentials: Promise<Credentials | undefined> | undefined;
  private ping: Promise<void> | undefined;

  constructor(readonly registry: string, private readonly opts: ClientOptions = {}) {
    this.baseUrl = registryBaseUrl(registry, opts.tlsVerify ?? true);
    this.signal = opts.signal;
    this.auth = new Authenticator(registry, () => this.lookUpCredentials(), opts.signal, opts.retryWait);
  }

  /** Resolves a path or a Location header against the registry's base URL. */
  url(pathOrUrl: string): string {
    return new URL(pathOrUrl, this.baseUrl).toString();
  }

  /**
   * Sends a request with whatever authorization the registry asks for. A 401 is answered by
   * learning the challenge, renewing the token and sending once more, if the body can be
   * sent again; a second 401 is an AuthError naming the registry and repository.
   */
  async request(req: ClientRequest): Promise<Response> {
    await this.ensurePinged();
    const replayable = req.body === undefined || Buffer.isBuffer(req.body);
    const signal = req.signal && this.signal ? AbortSignal.any([req.signal, this.signal]) : req.signal ?? this.signal;
    for (let attempt = 1; ; attempt++) {
      const authorization = await this.auth.authorization(req.scopes);
      const response = await send({
        method: req.method,
        url: this.url(req.url),
        idempotent: req.idempotent,
        ...(req.headers ? { headers: req.headers } : {}),
        ...(req.body !== undefined ? { body: req.body } : {}),
        ...(authorization !== undefined ? { authorization } : {}),
        ...(signal ? { signal } : {}),
        ...(this.opts.retryWait ? { retryWait: this.opts.retryWait } : {}),
      }, this.registry);
      if (response.status !== 401) return response;
      await discard(response);
      if (attempt >= 2 || !replayable) throw await this.auth.refused(req.scopes[0]?.repository ?? "the registry");
      this.auth.learn(response);
      this.auth.invalidate();
    }
  }

  private ensurePinged(): Promise<void> {
    this.ping ??= (async () => {
      const response = await send({
        method: "GET", url: this.url("/v2/"), idempotent: true,
        ...(this.signal ? { signal: this.signal } : {}),
        ...(this.opts.retryWait ? { retryWait: this.opts.retryWait } : {}),
      }, this.registry);
      await discard(response);
      this.auth.learn(response);
    })();
    // A failed ping (network) is tried again by the next request rather than remembered.
    this.ping.catch(() => { this.ping = undefined; });
    return this.ping;
  }

  private lookUpCredentials(): Promise<Credentials | undefined> {
    const opts: { creds?: string; env?: NodeJS.ProcessEnv } = {};
    if (this.opts.creds !== undefined) opts.creds = this.opts.creds;
    if (this.opts.env !== undefined) opts.env = this.opts.env;
    this.credentials ??= findCredentials(this.registry, opts);
    return this.credentials;
  }
}
