/**
 * The thread the gantry command starts ahead of a rebuild's snapshot walk
 * (src/util/prestarted-worker.ts, src/cache/snapshot-prestart.ts). It must be taken only by
 * the work it was started for, do that work as a thread started then would, never keep the
 * command alive or linger once released, and be started only while the cache says the last
 * build wanted it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { prestartWorker, releasePrestartedWorker, takePrestartedWorker } from "../../src/util/prestarted-worker.js";
import { SNAPSHOT_WORKER_URL, prestartSnapshotThread } from "../../src/cache/snapshot-prestart.js";
import { SnapshotHasher, SourceSnapshots, snapshotOf } from "../../src/cache/source-snapshot.js";
import { statSources } from "../../src/layer/sources.js";
import { settle } from "../helpers/settle.js";
import { tmpDir } from "../helpers/tmp.js";

/** A worker script that answers its first message with the message doubled, then ends. */
async function echoScript(dir: string): Promise<URL> {
  const path = join(dir, "echo.cjs");
  await writeFile(path, `const { parentPort } = require("node:worker_threads");\nparentPort.once("message", (m) => parentPort.postMessage(m * 2));\n`);
  return pathToFileURL(path);
}

test("a prestarted worker is taken once, by its own script only, and works for whoever took it", async (t) => {
  const script = await echoScript(await tmpDir(t));
  assert.equal(takePrestartedWorker(script), undefined, "none was started");
  const started = prestartWorker(script);
  assert.ok(started);
  assert.equal(takePrestartedWorker(new URL("file:///elsewhere/other.cjs")), undefined, "another script does not take it");
  const worker = takePrestartedWorker(script);
  assert.equal(worker, started);
  assert.equal(takePrestartedWorker(script), undefined, "taken once");
  worker!.postMessage(21);
  const [answer] = await once(worker!, "message");
  assert.equal(answer, 42);
  await once(worker!, "exit");
});

test("a released prestarted worker ends, and one that failed to start is not taken", async (t) => {
  const dir = await tmpDir(t);
  const script = await echoScript(dir);
  const idle = prestartWorker(script)!;
  idle.ref(); // unref'd, it would let this test end before its exit is seen
  const ended = once(idle, "exit");
  releasePrestartedWorker();
  await ended;
  assert.equal(takePrestartedWorker(script), undefined);

  const broken = pathToFileURL(join(dir, "throws.cjs"));
  await writeFile(broken, `throw new Error("cannot start");\n`);
  const failing = prestartWorker(broken)!;
  failing.ref();
  await new Promise((resolve) => failing.once("exit", resolve)); // events.once would reject on its "error"
  assert.equal(takePrestartedWorker(broken), undefined, "a dead worker is not handed out");
});

test("a snapshot on two threads takes the prestarted thread and gives the snapshot one thread gives", async (t) => {
  const dir = await tmpDir(t);
  for (let i = 0; i < 6; i++) {
    await mkdir(join(dir, `pkg${i}`, "lib"), { recursive: true });
    await writeFile(join(dir, `pkg${i}`, "lib", "index.js"), `${i}\n`);
  }
  const sources = [{ from: dir, to: "/" }];
  const alone = await snapshotOf(sources, { threads: 1 });
  assert.ok(alone !== undefined);
  const worker = prestartWorker(SNAPSHOT_WORKER_URL)!;
  const exited = once(worker, "exit");
  const both = await snapshotOf(sources, { threads: 2 });
  assert.deepEqual(both, alone);
  // An untaken worker waits for a job for ever: this one did the job it was given and ended.
  await exited;
  assert.equal(takePrestartedWorker(SNAPSHOT_WORKER_URL), undefined);
});

test("the command starts the snapshot's thread only while the last build wanted one", async (t) => {
  const dir = await tmpDir(t);
  const cache = join(dir, "cache");
  const env = { GANTRY_CACHE: cache };
  const tree = join(dir, "tree");
  for (const name of ["a", "b", "c", "d"]) {
    await mkdir(join(tree, name), { recursive: true });
    await writeFile(join(tree, name, "f"), name);
  }
  const sources = [{ from: tree, to: "/" }];
  await settle(dir); // a snapshot seeing a change within the clock's tick is not recorded
  const walked = new SnapshotHasher();
  statSources(sources, walked.visit);
  const key = { hex: "a".repeat(64) };
  const prestarts = (args: string[], threads = 2): boolean => {
    const started = prestartSnapshotThread(args, threads, env);
    releasePrestartedWorker();
    return started;
  };
  assert.equal(prestarts(["build", "spec.json"]), false, "a cache that never saw a build");

  // A build recording a snapshot big enough for several threads: the next command starts one.
  const first = new SourceSnapshots(join(cache, "snapshots"), { parallelEntries: 5 });
  await first.record("recipe", sources, walked, key);
  await first.rememberThreads();
  assert.equal(prestarts(["build", "spec.json"]), true);
  assert.equal(prestarts(["build", "spec.json", "--no-cache"]), false, "a build that reads no cache");
  assert.equal(prestarts(["inspect", "x.tar"]), false, "another command");
  assert.equal(prestarts(["build", "spec.json"], 1), false, "one core");

  // A build that matches that snapshot wants the thread again; one whose snapshots are all small does not.
  const again = new SourceSnapshots(join(cache, "snapshots"), { parallelEntries: 5 });
  assert.deepEqual(await again.unchangedKey("recipe", sources), key);
  await again.rememberThreads();
  assert.equal(prestarts(["build", "spec.json"]), true);
  const small = new SourceSnapshots(join(cache, "snapshots"), { parallelEntries: 1000 });
  assert.deepEqual(await small.unchangedKey("recipe", sources), key);
  await small.rememberThreads();
  assert.equal(prestarts(["build", "spec.json"]), false);
  assert.ok(!existsSync(join(cache, "snapshots", "threads-wanted")));
});
