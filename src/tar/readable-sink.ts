import { Readable } from "node:stream";
import { ChunkedTarSink } from "./sink.js";

/**
 * How much of a streamed tar is made ahead of its reader: the chunk being filled and about
 * one more waiting in the stream (some 1,000 headers of empty files each).
 */
const CHUNK = 512 * 1024;

/**
 * A tar sink read as a Node stream. Each full chunk is pushed to `readable`; while the
 * reader is behind, the writer waits in `filled` until the stream asks for more, so nothing
 * but those two chunks waits in memory, whatever the entries. Once the stream is destroyed
 * (its reader failed or left), `gone` fires and every wait rejects, which ends the writer.
 */
export class ReadableTarSink extends ChunkedTarSink {
  readonly readable: Readable;
  private readonly goneController = new AbortController();
  private waiting: { resume: () => void; stop: (err: Error) => void } | undefined;

  constructor() {
    // A pushed chunk belongs to the stream: each has a buffer of its own.
    super(CHUNK, "fresh");
    this.readable = new Readable({
      highWaterMark: CHUNK,
      read: () => this.release(),
      destroy: (err, callback) => {
        this.goneController.abort();
        this.release(closed());
        callback(err);
      },
    });
  }

  /** Fires when the stream is destroyed: the writer should stop and release what it holds. */
  get gone(): AbortSignal {
    return this.goneController.signal;
  }

  override async close(): Promise<void> {
    await super.close();
    if (!this.readable.destroyed) this.readable.push(null);
  }

  /** Fails the stream with the writer's error. */
  fail(err: unknown): void {
    this.readable.destroy(err as Error);
  }

  protected handOn(chunk: Buffer): Promise<void> | undefined {
    if (this.readable.destroyed) return Promise.reject(closed());
    if (this.readable.push(chunk)) return undefined;
    return new Promise((resume, stop) => { this.waiting = { resume, stop }; });
  }

  /** Lets a waiting writer go on, or stops it with `err`. */
  private release(err?: Error): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    if (err) waiting?.stop(err);
    else waiting?.resume();
  }
}

function closed(): Error {
  return new Error("the tar stream was closed");
}
