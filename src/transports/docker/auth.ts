import { AuthError, RegistryError } from "../../model/errors.js";
import { findChallenge, parseChallenges, type Challenge } from "./challenge.js";
import type { Credentials } from "./credentials.js";
import { discard, send } from "./http.js";
import { readLimited } from "./body.js";
import type { StepRetries } from "./retry.js";
import type { RegistryResponse } from "./http-exchange.js";

/** Access wanted on one repository; becomes a token scope `repository:NAME:pull,push`. */
export interface Scope {
  readonly repository: string;
  readonly actions: readonly ("pull" | "push")[];
}

/** The token scope for `s`: `repository:NAME:pull,push`. */
export function scopeString(s: Scope): string {
  return `repository:${s.repository}:${s.actions.join(",")}`;
}

type Scheme =
  | { kind: "none" }
  | { kind: "basic" }
  | { kind: "bearer"; realm: string; service: string | undefined };

interface CachedToken { value: string; expiresAt: number }

/** Tokens are renewed this long before the registry would refuse them. */
const TOKEN_EXPIRY_MARGIN_MS = 10_000;
/** The distribution spec's default when a token server omits `expires_in`. */
const DEFAULT_TOKEN_LIFETIME_S = 60;
const MAX_TOKEN_RESPONSE = 1024 * 1024;

/**
 * What one registry expects: nothing, Basic credentials, or Bearer tokens from the realm its
 * `WWW-Authenticate` challenge names. Tokens are cached per set of scopes and shared by
 * concurrent requests; a 401 makes the caller `invalidate` and ask again.
 */
export class Authenticator {
  private scheme: Scheme | undefined;
  private readonly tokens = new Map<string, Promise<CachedToken>>();

  constructor(
    private readonly registry: string,
    private readonly credentials: () => Promise<Credentials | undefined>,
    /** A step of the client's, with its retry policy and signal. */
    private readonly step: (action: string) => StepRetries,
    /** The token server's certificate is not checked either (`--tls-verify=false`). */
    private readonly insecure = false,
  ) {}

  get known(): boolean { return this.scheme !== undefined; }

  /** Learns the scheme from the `/v2/` ping's answer or from any 401. */
  learn(response: RegistryResponse): void {
    if (response.status !== 401) {
      this.scheme ??= { kind: "none" };
      return;
    }
    // A 401 without a challenge we understand keeps what the ping taught; failing that, Basic.
    this.scheme = schemeOf(parseChallenges(response.headers.get("www-authenticate"))) ?? this.scheme ?? { kind: "basic" };
  }

  /** The Authorization header for a request needing `scopes`, or undefined for none. */
  async authorization(scopes: readonly Scope[]): Promise<string | undefined> {
    const scheme = this.scheme ?? { kind: "none" };
    if (scheme.kind === "none") return undefined;
    const creds = await this.credentials();
    if (scheme.kind === "basic") return creds ? basicHeader(creds) : undefined;
    const key = scopes.map(scopeString).sort().join(" ");
    let pending = this.tokens.get(key);
    const cached = pending ? await pending.catch(() => undefined) : undefined;
    if (!cached || cached.expiresAt - TOKEN_EXPIRY_MARGIN_MS < Date.now()) {
      pending = this.fetchToken(scheme, scopes, creds);
      this.tokens.set(key, pending);
      pending.catch(() => this.tokens.delete(key));
    }
    return `Bearer ${(await pending!).value}`;
  }

  /** Forgets tokens, so the next request fetches fresh ones. */
  invalidate(): void {
    this.tokens.clear();
  }

  /** The error for a registry that still says 401 after we tried what we have. */
  async refused(repository: string): Promise<AuthError> {
    const creds = await this.credentials().catch(() => undefined);
    return creds
      ? new AuthError(`authentication to ${this.registry} failed: access to ${repository} was refused for user ${creds.username} (credentials from ${creds.source}); check them, pass --creds USER:PASS or log in again`)
      : new AuthError(`authentication to ${this.registry} failed: ${repository} needs credentials and none were found; pass --creds USER:PASS or log in (docker login ${this.registry})`);
  }

  private async fetchToken(scheme: Extract<Scheme, { kind: "bearer" }>, scopes: readonly Scope[], creds: Credentials | undefined): Promise<CachedToken> {
    const url = new URL(scheme.realm);
    if (scheme.service !== undefined) url.searchParams.set("service", scheme.service);
    for (const s of scopes) url.searchParams.append("scope", scopeString(s));
    const retries = this.step(`serve a token from ${url.origin}`);
    const response = await send({
      method: "GET", url: url.toString(), idempotent: true, headers: { accept: "application/json" }, retries,
      ...(creds ? { authorization: basicHeader(creds) } : {}),
      ...(retries.signal ? { signal: retries.signal } : {}),
      insecure: this.insecure,
    }, `the token server ${url.host} of ${this.registry}`);
    if (response.status === 401 || response.status === 403) {
      await discard(response);
      throw creds
        ? new AuthError(`authentication to ${this.registry} failed: the token server ${url.origin} refused user ${creds.username} (credentials from ${creds.source}); check them, pass --creds USER:PASS or log in again`)
        : new AuthError(`authentication to ${this.registry} failed: its token server ${url.origin} requires credentials; pass --creds USER:PASS or log in (docker login ${this.registry})`);
    }
    if (!response.ok) {
      await discard(response);
      throw new RegistryError(`the token server ${url.origin} of ${this.registry} answered HTTP ${response.status}${retries.persistence}; try again later`, { retryable: response.status >= 500, status: response.status });
    }
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse((await readLimited(response, MAX_TOKEN_RESPONSE, retries)).toString("utf8")) as typeof body;
    } catch (err) {
      throw new RegistryError(`the token server ${url.origin} of ${this.registry} answered with something that is not a token (JSON expected)`, { cause: err });
    }
    const value = typeof body.token === "string" && body.token !== "" ? body.token
      : typeof body.access_token === "string" ? body.access_token : undefined;
    if (!value) throw new RegistryError(`the token server ${url.origin} of ${this.registry} answered without a token`);
    const lifetime = typeof body.expires_in === "number" && body.expires_in > 0 ? body.expires_in : DEFAULT_TOKEN_LIFETIME_S;
    return { value, expiresAt: Date.now() + lifetime * 1000 };
  }
}

function schemeOf(challenges: Challenge[]): Scheme | undefined {
  const bearer = findChallenge(challenges, "bearer");
  if (bearer?.params["realm"]) return { kind: "bearer", realm: bearer.params["realm"], service: bearer.params["service"] };
  if (findChallenge(challenges, "basic")) return { kind: "basic" };
  return undefined;
}

function basicHeader(creds: Credentials): string {
  return `Basic ${Buffer.from(`${creds.username}:${creds.password}`, "utf8").toString("base64")}`;
}
