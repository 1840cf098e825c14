import { parentPort, workerData } from "node:worker_threads";
import { hashSegments, type SegmentJob } from "./snapshot-segments.js";

/**
 * A thread of a parallel source snapshot (source-snapshot.ts): takes segments of the job it
 * is started with until none is left, then says so. Failures are in the job's shared control.
 */
if (parentPort !== null) {
  hashSegments(workerData as SegmentJob);
  parentPort.postMessage("done");
}
