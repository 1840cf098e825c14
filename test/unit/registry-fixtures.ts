/**
 * Shared by the registry unit tests that talk to test/helpers/fake-registry.ts: a client
 * that reads no real docker config and never sleeps between retries (it records the
 * delays instead), blobs to push, and a blob store in a temporary directory.
 */
import { Readable } from "node:stream";
import type { TestContext } from "node:test";
import { join } from "node:path";
import { BlobStore } from "../../src/cache/blob-store.js";
import { sha256, type Digest } from "../../src/model/digest.js";
import { verified } from "../../src/model/verify.js";
import { RegistryClient } from "../../src/transports/docker/client.js";
import type { RetryPolicy } from "../../src/transports/docker/retry.js";
import type { BlobToPush } from "../../src/transports/docker/upload.js";
import type { BlobLocation } from "../../src/transports/docker/origin.js";
import type { FakeRegistry } from "../helpers/fake-registry.js";
import { tmpDir } from "../helpers/tmp.js";

/** An environment whose HOME has no docker config: credentials come from `creds` or nowhere. */
const NO_DOCKER_CONFIG: NodeJS.ProcessEnv = { HOME: "/nonexistent/gantry-unit-test-home" };

export interface TestClient {
  readonly client: RegistryClient;
  /** Every delay the client asked to wait before a retry, in milliseconds, in order. */
  readonly waits: number[];
}

/**
 * A client of `fake` whose retry waits are recorded, not slept: its clock is virtual and
 * moves only by the waits, so a run of faults lasts exactly the sum of its waits.
 */
export function clientFor(fake: FakeRegistry, creds?: string, retry: Partial<RetryPolicy> = {}): TestClient {
  const { waits, policy } = recordingPolicy(retry);
  const client = new RegistryClient(fake.host, {
    env: NO_DOCKER_CONFIG,
    retry: policy,
    ...(creds !== undefined ? { creds } : {}),
  });
  return { client, waits };
}

/** A retry policy whose waits are recorded in `waits` and advance a virtual clock instead of sleeping. */
export function recordingPolicy(overrides: Partial<RetryPolicy> = {}): { waits: number[]; policy: Partial<RetryPolicy> } {
  const waits: number[] = [];
  let clock = 0;
  return {
    waits,
    policy: {
      wait: async (ms) => { waits.push(ms); clock += ms; },
      now: () => clock,
      ...overrides,
    },
  };
}

/** Deterministic bytes that differ at every offset, so a misplaced chunk changes the digest. */
export function patternBytes(size: number, seed = 1): Buffer {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return bytes;
}

export interface CountedBlob extends BlobToPush {
  /** How many times the upload opened the bytes. */
  readonly opened: () => number;
}

export interface BlobToPushOptions {
  /** Repositories said to hold it already (mount sources). */
  readonly locations?: readonly BlobLocation[];
  /** What the source really yields, when it is to differ from `bytes` (a damaged layer file). */
  readonly actually?: Buffer;
}

/** A blob to push from memory, verified as it is read like every real source. */
export function blobToPush(bytes: Buffer, opts: BlobToPushOptions = {}): CountedBlob {
  const digest = sha256(bytes);
  let opens = 0;
  return {
    digest, size: bytes.length, locations: opts.locations ?? [], describe: "the test blob",
    open: async () => {
      opens++;
      return verified(Readable.from(piecesOf(opts.actually ?? bytes, 1000)), digest, "the test blob", bytes.length);
    },
    opened: () => opens,
  };
}

/** The bytes in spans of `size`, as a file stream would hand them out. */
function piecesOf(bytes: Buffer, size: number): Buffer[] {
  const pieces: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) pieces.push(bytes.subarray(at, at + size));
  return pieces;
}

export function blobRef(digest: Digest | string, size: number): { digest: Digest; size: number; describe: string } {
  return { digest: digest as Digest, size, describe: "the test blob" };
}

export async function storeFor(t: TestContext): Promise<BlobStore> {
  return new BlobStore(join(await tmpDir(t), "store"));
}
