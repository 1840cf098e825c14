import { Transform, type TransformCallback } from "node:stream";
/** What long operations report while they run; the CLI renders it, the library never prints. */
export interface ProgressEvent {
  /** A short stable name of the step: "base", "layer", "write", "push", "pull"... */
  step: string;
  /** One human line, e.g. "packing layer 1: 312 entries (gzip)"; for a byte count, what is moving. */
  message: string;
  /**
   * Set on the byte counts of one piece of work under way (a layer being packed, a blob
   * being sent or fetched, an archive being written), for a live meter. A listener that
   * prints lines may skip these: the lines without `bytes` tell the same story.
   */
  bytes?: ProgressBytes;
}

/** The byte counts of one piece of work under way, as a ProgressEvent carries them. */
export interface ProgressBytes {
  /** Names the piece while it runs, unique among the pieces under way, e.g. "push sha256:...". */
  id: string;
  /** Bytes done so far. */
  done: number;
  /** Bytes in all, when known in advance. */
  total?: number;
  /** The last event of the piece: it is complete and `done` is its size. */
  final?: boolean;
}

/** Called with each event as it happens; it must not throw (the operation does not catch it). */
export type ProgressListener = (event: ProgressEvent) => void;

/** How often a meter reports at most; a terminal redraws no faster than people read. */
const METER_INTERVAL_MS = 100;

/** Counts the bytes of one piece of work and reports them to a listener; see byteMeter. */
export interface ByteMeter {
  /** Counts bytes just done. */
  add(bytes: number): void;
  /** Reports the piece complete. */
  end(): void;
}

/**
 * Turns a stream of byte counts into at most one event per 100 ms plus a final one, so a
 * piece that moves a MiB at a time costs nothing to watch.
 */
export function byteMeter(listener: ProgressListener | undefined, step: string, id: string, message: string, total?: number): ByteMeter {
  if (listener === undefined) return { add() {}, end() {} };
  let done = 0;
  let last = 0;
  const report = (final: boolean): void => {
    const bytes: ProgressBytes = { id, done };
    if (total !== undefined) bytes.total = Math.max(total, done);
    if (final) bytes.final = true;
    listener({ step, message, bytes });
  };
  report(false);
  return {
    add(n) {
      done += n;
      const now = Date.now();
      if (now - last >= METER_INTERVAL_MS) {
        last = now;
        report(false);
      }
    },
    end() { report(true); },
  };
}

/**
 * A pass-through that counts what flows on a meter of its own and ends it with the stream:
 * a blob sent or fetched gets a live bar (`byteMeter`). Without a listener it only passes.
 */
export function meteringStream(listener: ProgressListener | undefined, step: string, id: string, message: string, total?: number): Transform {
  const meter = byteMeter(listener, step, id, message, total);
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      meter.add(chunk.length);
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      meter.end();
      cb();
    },
  });
}
