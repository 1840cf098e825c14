/**
 * mapLimited (src/util/concurrency.ts): results in input order, never more than `limit`
 * calls at once, and on failure no new work, the running calls waited for, the first
 * error thrown. Calls are settled by hand (no timers), so every interleaving is exact.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { setImmediate as nextTurn } from "node:timers/promises";
import { mapLimited } from "../../src/util/concurrency.js";

interface Pending<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

function pending<T>(): Pending<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

/** A `work` whose calls wait until the test settles them, recording what started and what runs. */
function controlledWork(count: number) {
  const calls = Array.from({ length: count }, () => pending<string>());
  const started: number[] = [];
  let running = 0;
  let mostAtOnce = 0;
  const work = async (_item: number, i: number): Promise<string> => {
    started.push(i);
    running++;
    mostAtOnce = Math.max(mostAtOnce, running);
    try {
      return await (calls[i] as Pending<string>).promise;
    } finally {
      running--;
    }
  };
  return { calls, started, work, running: () => running, mostAtOnce: () => mostAtOnce };
}

/** Whether `promise` has settled, after letting every queued callback run. */
async function hasSettled(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(() => { settled = true; }, () => { settled = true; });
  await nextTurn();
  return settled;
}

test("results keep the order of the items, whatever order the calls finish in", async () => {
  const items = [0, 1, 2, 3, 4, 5];
  const w = controlledWork(items.length);
  const all = mapLimited(items, 3, w.work);
  // Finish in reverse of whatever is running, again and again, until all are done.
  while (w.started.length < items.length || w.running() > 0) {
    await nextTurn();
    for (const i of [...w.started].reverse()) w.calls[i]?.resolve(`result ${i}`);
  }
  assert.deepEqual(await all, items.map((i) => `result ${i}`));
});

test("never more than `limit` calls run at once, and `limit` do run together", async () => {
  const items = Array.from({ length: 10 }, (_, i) => i);
  const w = controlledWork(items.length);
  const all = mapLimited(items, 3, w.work);
  await nextTurn();
  assert.deepEqual(w.started, [0, 1, 2], "three start at once, no more");
  for (let done = 0; done < items.length; done++) {
    w.calls[done]?.resolve(String(done));
    await nextTurn();
    assert.ok(w.running() <= 3, `${w.running()} running after ${done + 1} finished`);
  }
  await all;
  assert.equal(w.mostAtOnce(), 3);
  assert.deepEqual(w.started, items, "each item once, in order");
});

test("the first failure stops new work, waits for running calls, and is the error thrown", async () => {
  const items = Array.from({ length: 8 }, (_, i) => i);
  const w = controlledWork(items.length);
  const all = mapLimited(items, 3, w.work);
  await nextTurn();
  assert.deepEqual(w.started, [0, 1, 2]);

  const first = new Error("the first failure");
  w.calls[1]?.reject(first);
  await nextTurn();
  assert.deepEqual(w.started, [0, 1, 2], "nothing new starts after a failure");
  assert.equal(await hasSettled(all), false, "calls 0 and 2 still run, so it has not failed yet");

  w.calls[2]?.reject(new Error("a later failure"));
  await nextTurn();
  assert.equal(await hasSettled(all), false, "call 0 still runs");

  w.calls[0]?.resolve("late success");
  await assert.rejects(all, (err: unknown) => err === first);
  assert.deepEqual(w.started, [0, 1, 2], "still nothing new started");
  assert.equal(w.running(), 0, "nothing is left running once it has failed");
});

test("a call that throws before returning a promise counts as a failure like any other", async () => {
  const started: number[] = [];
  const boom = new Error("thrown at once");
  const work = (item: number): Promise<number> => {
    started.push(item);
    if (item === 0) throw boom;
    return Promise.resolve(item);
  };
  await assert.rejects(mapLimited([0, 1, 2, 3], 1, work), (err: unknown) => err === boom);
  assert.deepEqual(started, [0]);
});

test("no items give no results; a limit below 1 is refused", async () => {
  assert.deepEqual(await mapLimited([], 4, async () => 1), []);
  await assert.rejects(mapLimited([1], 0, async () => 1), RangeError);
  await assert.rejects(mapLimited([1], Number.NaN, async () => 1), RangeError);
});
