import type { Readable } from "node:stream";
import { GantryError, RegistryError } from "../../model/errors.js";
import { Authenticator, type Scope } from "./auth.js";
import { readLimited } from "./body.js";
import { findCredentials, type Credentials } from "./credentials.js";
import { registryBaseUrls } from "./endpoint.js";
import { discard, send, type HttpMethod } from "./http.js";
import { retryPolicy, StepRetries, type RetryPolicy } from "./retry.js";
import type { RegistryResponse } from "./http-exchange.js";

/** How a RegistryClient reaches its registry: credentials, TLS, retries, and the signal that stops it. */
export interface ClientOptions {
  /** `USER:PASS`; otherwise the docker config files and credential helpers are asked. */
  creds?: string;
  /** false: to a non-loopback registry, HTTPS without a certificate check, or plain HTTP if it has no TLS. */
  tlsVerify?: boolean;
  signal?: AbortSignal;
  /**
   * Where to read DOCKER_CONFIG, REGISTRY_AUTH_FILE, HOME, GANTRY_RETRY_SECONDS and
   * GANTRY_STALL_SECONDS from (tests); default process.env.
   */
  env?: NodeJS.ProcessEnv;
  /** How faults are retried (tests: a wait that does not sleep, a short budget); over the env's and the defaults. */
  retry?: Partial<RetryPolicy>;
}

/** One request through a RegistryClient: what to send, the access it needs, and its step. */
export interface ClientRequest {
  readonly method: HttpMethod;
  /** A path ("/v2/…") or an absolute URL the registry gave us (an upload's Location). */
  readonly url: string;
  /** The repository access a token must grant for it. */
  readonly scopes: readonly Scope[];
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Buffer | Readable;
  /** Whether sending it twice is harmless; only such requests are retried after a fault. */
  readonly idempotent: boolean;
  /** The step this request is part of (see `step`). */
  readonly retries: StepRetries;
  /** Aborts this request as well as everything the client's own signal aborts. */
  readonly signal?: AbortSignal;
}

/** What `requestWhole` checks of a small document it read, besides its size limit. */
export interface WholeCheck {
  /** Bytes at most. */
  readonly limit: number;
  /** The size the document must have, when it is known (a descriptor's). */
  readonly size?: number;
}

/**
 * A session with one registry: the `/v2/` ping (once, on first use), credentials (looked up
 * once), tokens per scope, the retry-on-401 rule and the retry policy. Operations in pull.ts
 * and push.ts speak through `request` and never see authentication.
 */
export class RegistryClient {
  /** Where the API is: the first of registryBaseUrls until the ping settles on one. */
  private baseUrl: string;
  /** The other places to try if the ping cannot reach `baseUrl` (plain HTTP after unchecked HTTPS). */
  private readonly fallbacks: string[];
  /** HTTPS without a certificate check. */
  private readonly insecure: boolean;
  readonly signal: AbortSignal | undefined;
  readonly policy: RetryPolicy;
  private readonly auth: Authenticator;
  private credentials: Promise<Credentials | undefined> | undefined;
  private ping: Promise<void> | undefined;

  constructor(readonly registry: string, private readonly opts: ClientOptions = {}) {
    const [first, ...rest] = registryBaseUrls(registry, opts.tlsVerify ?? true);
    this.baseUrl = first!;
    this.fallbacks = rest;
    this.insecure = opts.tlsVerify === false;
    this.signal = opts.signal;
    this.policy = retryPolicy(opts.env ?? process.env, opts.retry);
    this.auth = new Authenticator(registry, () => this.lookUpCredentials(), (action) => this.step(action), this.insecure);
  }

  /** A step of work with this registry, named as a verb phrase for errors ("fetch layer 2 of app:1"). */
  step(action: string): StepRetries {
    return new StepRetries(this.registry, action, this.policy, this.signal);
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
  async request(req: ClientRequest): Promise<RegistryResponse> {
    await this.ensurePinged();
    const replayable = req.body === undefined || Buffer.isBuffer(req.body);
    const signal = req.signal && this.signal ? AbortSignal.any([req.signal, this.signal]) : req.signal ?? this.signal;
    for (let attempt = 1; ; attempt++) {
      const authorization = await this.auth.authorization(req.scopes);
      const response = await send({
        method: req.method,
        url: this.url(req.url),
        idempotent: req.idempotent,
        retries: req.retries,
        ...(req.headers ? { headers: req.headers } : {}),
        ...(req.body !== undefined ? { body: req.body } : {}),
        ...(authorization !== undefined ? { authorization } : {}),
        ...(signal ? { signal } : {}),
        insecure: this.insecure,
      }, this.registry);
      if (response.status !== 401) return response;
      await discard(response);
      if (attempt >= 2 || !replayable) throw await this.auth.refused(req.scopes[0]?.repository ?? "the registry");
      this.auth.learn(response);
      this.auth.invalidate();
    }
  }

  /**
   * An idempotent GET of a small document, read whole: an answer cut off, stalled or of the
   * wrong length is a fault of the step, fetched again while the step allows. A non-success
   * answer is returned unread, for the caller to word.
   */
  async requestWhole(req: ClientRequest, check: WholeCheck): Promise<{ response: RegistryResponse; bytes: Buffer | undefined }> {
    for (;;) {
      const response = await this.request(req);
      if (!response.ok) return { response, bytes: undefined };
      let fault: GantryError;
      try {
        const announced = response.headers.get("content-length");
        if (check.size !== undefined && announced !== null && Number(announced) !== check.size) {
          await discard(response);
          throw this.fault(req, `it announced ${announced} bytes where ${check.size} were expected`);
        }
        const bytes = await readLimited(response, check.limit, req.retries);
        if (check.size === undefined || bytes.length === check.size) {
          req.retries.progress();
          return { response, bytes };
        }
        throw this.fault(req, `it sent ${bytes.length} bytes where ${check.size} were expected`);
      } catch (err) {
        if (err instanceof GantryError && !err.retryable) throw err;
        fault = err instanceof GantryError ? err : this.fault(req, `the answer was cut off (${(err as Error).message})`, err);
      }
      if (!(await req.retries.retry())) throw fault;
    }
  }

  private fault(req: ClientRequest, what: string, cause?: unknown): RegistryError {
    return new RegistryError(`${this.registry} failed to ${req.retries.action}: ${what}${req.retries.persistence}; try again`, { retryable: true, cause });
  }

  private ensurePinged(): Promise<void> {
    this.ping ??= (async () => {
      for (;;) {
        const fallback = this.fallbacks[0];
        // A place with another after it is tried once: a registry without TLS is not a fault to wait out.
        const retries = fallback === undefined ? this.step("answer its API check (/v2/)")
          : new StepRetries(this.registry, "answer its API check (/v2/)", { ...this.policy, maxTries: 1 }, this.signal);
        let response: RegistryResponse;
        try {
          response = await send({
            method: "GET", url: this.url("/v2/"), idempotent: true, retries, insecure: this.insecure,
            ...(this.signal ? { signal: this.signal } : {}),
          }, this.registry);
        } catch (err) {
          if (fallback === undefined || this.signal?.aborted) throw err;
          this.baseUrl = this.fallbacks.shift()!;
          continue;
        }
        await discard(response);
        this.auth.learn(response);
        return;
      }
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
