import { AuthError, ImageNotFoundError, RegistryError, type GantryError } from "../../model/errors.js";
import { readLimited } from "./body.js";
import { isRetryableStatus } from "./http.js";
import { retryAfterMs, type StepRetries } from "./retry.js";
import type { RegistryResponse } from "./http-exchange.js";

/**
 * Turns a registry's non-success answer into one error sentence: the registry, the
 * repository, what we were doing, the status and the registry's own error code, how long
 * the fault lasted when it was tried again, and what to do next.
 */
export interface FailureContext {
  readonly registry: string;
  readonly repository: string;
  /** What was being done, as a verb phrase: "read the manifest of docker.io/library/x:1". */
  readonly action: string;
  /** For 404s: the thing that is missing, naming its registry ("docker.io/library/x:1"). */
  readonly missing?: string;
  /** The step's retries, for how many tries the fault lasted. */
  readonly retries?: StepRetries;
}

interface DistributionError { code?: string; message?: string }

const MAX_ERROR_BODY = 64 * 1024;

/**
 * The error for a non-success answer: ImageNotFoundError for a 404 of a named thing, AuthError for a 403,
 * else RegistryError, retryable for 408, 429, 500, 502, 503 and 504.
 */
export async function registryFailure(response: RegistryResponse, ctx: FailureContext): Promise<GantryError> {
  const errors = await readErrors(response, ctx.retries);
  const first = errors[0];
  const said = first ? `, ${first.code ?? "error"}${first.message ? `: ${first.message}` : ""}` : "";
  const status = response.status;
  if (status === 404 && ctx.missing !== undefined) {
    return new ImageNotFoundError(`${ctx.missing} was not found (HTTP 404${said}); check the repository name, tag and digest`);
  }
  if (status === 403) {
    return new AuthError(`access to ${ctx.registry}/${ctx.repository} was denied (HTTP 403${said}) when trying to ${ctx.action}; check that your account may do that, pass --creds or log in`);
  }
  const retryable = isRetryableStatus(status);
  const advice = retryable ? "try again later" : "the registry refused the request";
  const waitAsked = retryAfterMs(response.headers.get("retry-after"));
  return new RegistryError(
    `${ctx.registry} failed to ${ctx.action} in ${ctx.repository} (HTTP ${status}${said}${ctx.retries?.persistence ?? ""}); ${advice}`,
    { retryable, status, ...(waitAsked !== undefined ? { retryAfterMs: waitAsked } : {}) },
  );
}

async function readErrors(response: RegistryResponse, retries: StepRetries | undefined): Promise<DistributionError[]> {
  if (!response.body) return [];
  try {
    const text = (await readLimited(response, MAX_ERROR_BODY, retries)).toString("utf8");
    const parsed = JSON.parse(text) as { errors?: unknown };
    return Array.isArray(parsed.errors) ? parsed.errors as DistributionError[] : [];
  } catch {
    return [];
  }
}
