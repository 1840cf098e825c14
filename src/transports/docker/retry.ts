import { setTimeout as sleep } from "node:timers/promises";
import { AbortedError } from "../../model/errors.js";

/**
 * How long one step of registry work keeps going through faults. A step is what a user
 * would name: reaching the registry, reading a manifest, fetching or uploading one blob,
 * storing a manifest. Every request of a step, and every resumption of its upload or
 * download, draws on one `StepRetries`.
 *
 * Faults come in runs: a run starts with a fault and ends when the step moves forward (a
 * blob or chunk accepted, a document read, a byte downloaded). A run is bounded twice, by
 * tries and by time, so a fault that persists ends the step within `budgetMs` plus one
 * request, while a long upload through a registry that fails now and then goes on as long
 * as each fault is followed by progress. Waits honour the registry's `Retry-After`; a wait
 * longer than what is left of the budget is not started: the step gives up at once. The
 * backoff grows with faults in a row and starts over after any good answer: a registry that
 * answers again is not overloaded, though the run goes on counting until there is progress.
 */

/** Waits `ms` milliseconds (or until `signal` aborts, then rejects). */
export type RetryWait = (ms: number, signal: AbortSignal | undefined) => Promise<void>;

/** How long a step keeps trying through a run of faults, and how it waits between tries. */
export interface RetryPolicy {
  /** Tries in one run of faults, the first included. */
  readonly maxTries: number;
  /** How long one run of faults may last, its waits included (ms). */
  readonly budgetMs: number;
  /** The first backoff (ms); each next one is three times longer, ±25%, at most `maxBackoffMs`. */
  readonly backoffMs: number;
  /** The longest backoff (ms). */
  readonly maxBackoffMs: number;
  /** A response that sends nothing (headers or body) for this long is abandoned as a fault (ms). */
  readonly stallMs: number;
  /** How to wait; tests pass one that records and returns at once. */
  readonly wait: RetryWait;
  /** The clock runs are measured with. */
  readonly now: () => number;
}

const sleepFor: RetryWait = async (ms, signal) => {
  await sleep(ms, undefined, signal ? { signal } : undefined);
};

/** The defaults: 8 tries within a minute per run of faults, backoff from 250 ms to 10 s, a 30 s stall timeout. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxTries: 8,
  budgetMs: 60_000,
  backoffMs: 250,
  maxBackoffMs: 10_000,
  stallMs: 30_000,
  wait: sleepFor,
  now: () => Date.now(),
};

/**
 * The policy: the defaults, then `GANTRY_RETRY_SECONDS` (the budget) and
 * `GANTRY_STALL_SECONDS` from `env`, then what the caller sets.
 */
export function retryPolicy(env: NodeJS.ProcessEnv = process.env, overrides: Partial<RetryPolicy> = {}): RetryPolicy {
  const fromEnv: Partial<Mutable<RetryPolicy>> = {};
  const budget = seconds(env["GANTRY_RETRY_SECONDS"]);
  if (budget !== undefined) fromEnv.budgetMs = budget;
  const stall = seconds(env["GANTRY_STALL_SECONDS"]);
  if (stall !== undefined && stall > 0) fromEnv.stallMs = stall;
  return { ...DEFAULT_RETRY_POLICY, ...fromEnv, ...overrides };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function seconds(value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  const n = Number(value);
  return Number.isFinite(n) && n >= 0 ? n * 1000 : undefined;
}

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null | undefined, now: number = Date.now()): number | undefined {
  if (header === null || header === undefined || header.trim() === "") return undefined;
  if (/^\s*\d+\s*$/.test(header)) return Number(header) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The retry budget of one step (see above), named in errors by `registry` and `action`. */
export class StepRetries {
  /** Faults in this run. */
  private faults = 0;
  /** Faults since the last good answer: what the backoff grows with. */
  private inARow = 0;
  private runStart: number | undefined;

  /**
   * @param registry names the registry in errors
   * @param action the step, as a verb phrase for errors: "upload layer 1 of app:1 to team/app"
   */
  constructor(
    readonly registry: string,
    readonly action: string,
    readonly policy: RetryPolicy,
    readonly signal?: AbortSignal,
  ) {}

  /** The step moved forward: the next fault starts a new run. */
  progress(): void {
    this.faults = 0;
    this.inARow = 0;
    this.runStart = undefined;
  }

  /** An answer that was not a fault: the next backoff starts small again. */
  answered(): void {
    this.inARow = 0;
  }

  /**
   * After a fault: the milliseconds to wait before the next try, the fault counted; or
   * undefined when the run is over (out of tries, or the wait would pass the budget), and
   * the caller reports the fault it holds, whose message `persistence` completes.
   */
  next(retryAfter?: number): number | undefined {
    const now = this.policy.now();
    const start = this.runStart ?? now;
    if (this.faults + 1 >= this.policy.maxTries) return undefined;
    const delay = retryAfter ?? this.backoff();
    if (now - start + delay > this.policy.budgetMs) return undefined;
    this.runStart = start;
    this.faults++;
    this.inARow++;
    return delay;
  }

  /** Waits `ms` (see `next`); an abort of the step's signal rejects with AbortedError. */
  async wait(ms: number): Promise<void> {
    try {
      await this.policy.wait(ms, this.signal);
    } catch (err) {
      throw new AbortedError(this.signal?.reason ?? err);
    }
  }

  /** `next` then `wait`; false when the run is over. */
  async retry(retryAfter?: number): Promise<boolean> {
    const delay = this.next(retryAfter);
    if (delay === undefined) return false;
    await this.wait(delay);
    return true;
  }

  /**
   * For an error about the fault at hand: "" on the run's first try, else
   * ", 4 tries in 6.2 s" (the failing try included).
   */
  get persistence(): string {
    if (this.faults === 0 || this.runStart === undefined) return "";
    const elapsed = (this.policy.now() - this.runStart) / 1000;
    return `, ${this.faults + 1} tries in ${elapsed.toFixed(1)} s`;
  }

  private backoff(): number {
    const base = this.policy.backoffMs * 3 ** this.inARow;
    return Math.min(this.policy.maxBackoffMs, base * (0.75 + Math.random() / 2));
  }
}
