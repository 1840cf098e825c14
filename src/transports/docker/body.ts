import { RegistryError } from "../../model/errors.js";
import { DEFAULT_RETRY_POLICY, type StepRetries } from "./retry.js";
import type { RegistryResponse } from "./http-exchange.js";

/**
 * Reading a response's body without trusting the other end to keep sending: each chunk
 * must come within the step's stall timeout, else the body is destroyed (which drops its
 * connection) and the read fails with a retryable error naming the registry and the step.
 */

/** The body's chunks as they arrive; see the module comment for what a stall does. */
export async function* bodyChunks(response: RegistryResponse, retries?: StepRetries): AsyncGenerator<Buffer> {
  const body = response.body;
  if (!body) return;
  const stallMs = retries?.policy.stallMs ?? DEFAULT_RETRY_POLICY.stallMs;
  const chunks = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  let pending: Promise<IteratorResult<Buffer>> | undefined;
  let finished = false;
  try {
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const stall = new Promise<"stalled">((resolve) => { timer = setTimeout(() => resolve("stalled"), stallMs); });
      pending = chunks.next();
      let step: IteratorResult<Buffer> | "stalled";
      try {
        step = await Promise.race([pending, stall]);
      } finally {
        clearTimeout(timer);
      }
      if (step === "stalled") throw stalledError(retries, stallMs, response.url);
      pending = undefined;
      if (step.done) {
        finished = true;
        return;
      }
      yield step.value;
    }
  } finally {
    // A body left part-way (stalled, failed, or its reader gave up) must not hold its connection.
    if (!finished) {
      void pending?.catch(() => {}); // a read still waiting fails when the body goes
      body.destroy();
    }
  }
}

/** The error for an answer that stopped coming: retryable, naming the registry and the step. */
export function stalledError(retries: StepRetries | undefined, stallMs: number, url: string): RegistryError {
  const seconds = Math.round(stallMs / 100) / 10;
  const what = retries ? `${retries.registry} failed to ${retries.action}` : `the answer from ${url} stopped`;
  return new RegistryError(`${what}: it sent nothing for ${seconds} s${retries?.persistence ?? ""}; try again`, { retryable: true });
}

/** Reads a small response body whole, refusing one larger than `limit` bytes. */
export async function readLimited(response: RegistryResponse, limit: number, retries?: StepRetries): Promise<Buffer> {
  const declared = Number(response.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > limit) {
    response.body?.destroy();
    throw new RegistryError(`the registry answered with ${declared} bytes where at most ${limit} were expected from ${response.url}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of bodyChunks(response, retries)) {
    size += chunk.length;
    if (size > limit) {
      throw new RegistryError(`the registry sent more than ${limit} bytes where a small document was expected from ${response.url}`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
