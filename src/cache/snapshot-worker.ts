import { parentPort } from "node:worker_threads";
import { hashSegments, type SegmentJob } from "./snapshot-segments.js";

/**
 * A thread of a parallel source snapshot (source-snapshot.ts): waits for its job, takes
 * segments of it until none is left, then says so and ends. Failures are in the job's shared
 * control. The job comes as a message, not with the start, so that the thread can be started
 * before the job exists (src/util/prestarted-worker.ts).
 */
const port = parentPort;
port?.once("message", (job: SegmentJob) => {
  hashSegments(job);
  port.postMessage("done");
});
