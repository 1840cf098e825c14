import { AuthError, ImageNotFoundError, RegistryError, type GantryError } from "../../model/errors.js";
import { isRetryableStatus } from "./http.js";

/**
 * Turns a registry's non-success answer into one error sentence: the registry, the
 * repository, what we were doing, the registry's own error code, and what to do next.
 */
export interface FailureContext {
  readonly registry: string;
  readonly repository: string;
  /** What was being done, as a verb phrase: "read the manifest of docker.io/library/x:1". */
  readonly action: string;
  /** For 404s: the thing that is missing, naming its registry ("docker.io/library/x:1"). */
  readonly missing?: string;
}

interface DistributionError { code?: string; message?: string }

const MAX_ERROR_BODY = 64 * 1024;

export async function registryFailure(response: Response, ctx: FailureContext): Promise<GantryError> {
  const errors = await readErrors(response);
  const first = errors[0];
  const said = first ? `${first.code ?? "error"}${first.message ? `: ${first.message}` : ""}` : `HTTP ${response.status}`;
  const status = response.status;
  if (status === 404 && ctx.missing !== undefined) {
    return new ImageNotFoundError(`${ctx.missing} was not found (${said}); check the repository name, tag and digest`);
  }
  if (status === 403) {
    return new AuthError(`access to ${ctx.registry}/${ctx.repository} was denied (${said}) when trying to ${ctx.action}; check that your account may do that, pass --creds or log in`);
  }
  const retryable = isRetryableStatus(status);
  const advice = retryable ? "try again later" : "the registry refused the request";
  return new RegistryError(`${ctx.registry} failed to ${ctx.action} in ${ctx.repository} (HTTP ${status}, ${said}); ${advice}`, { retryable, status });
}

async function readErrors(response: Response): Promise<DistributionError[]> {
  if (!response.body) return [];
  try {
    const text = (await readLimited(response, MAX_ERROR_BODY)).toString("utf8");
    const parsed = JSON.parse(text) as { errors?: unknown };
    return Array.isArray(parsed.errors) ? parsed.errors as DistributionError[] : [];
  } catch {
    return [];
  }
}

/** Reads a small response body whole, refusing one larger than `limit` bytes. */
export async function readLimited(response: Response, limit: number): Promise<Buffer> {
  const declared = Number(response.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > limit) {
    await response.body?.cancel();
    throw new RegistryError(`the registry answered with ${declared} bytes where at most ${limit} were expected from ${response.url}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  if (response.body) {
    for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
      size += chunk.length;
      if (size > limit) {
        throw new RegistryError(`the registry sent more than ${limit} bytes where a small document was expected from ${response.url}`);
      }
      chunks.push(Buffer.from(chunk));
    }
  }
  return Buffer.concat(chunks);
}
