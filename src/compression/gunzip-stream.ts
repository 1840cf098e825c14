import type { Transform, TransformCallback } from "node:stream";
import { Gunzip } from "node:zlib";
import { ExpansionCounter, type ExpansionBound } from "./expansion.js";

/**
 * gzip decompression as strict as Go's reader (containerd, docker): zlib already fails a bad
 * CRC or length, a cut stream and junk after a member, and reads concatenated members
 * (pigz); what it lets pass is zero bytes after the last member, which it silently skips.
 * Those are refused here, as Go's reader refuses them: a layer is exactly its gzip members.
 * Given a bound, output past it fails the stream (expansion.ts). zlib honours backpressure
 * itself: it inflates one chunk at a time, as its reader asks. The chunk is 1 MiB: a 211 MB
 * layer inflated in 1.1 s with 64 KiB chunks, 0.53 s with 256 KiB and 0.46 s with 1 MiB
 * (each chunk is a round trip to the thread pool), which a copy that checks its layers on
 * the way pays in full.
 */
export function strictGunzip(bound?: ExpansionBound): Transform {
  strictGunzipClass ??= defineStrictGunzip();
  return new strictGunzipClass(bound);
}

let strictGunzipClass: ReturnType<typeof defineStrictGunzip> | undefined;

/**
 * The class, made at the first call: it extends node's Gunzip, and the gantry command loads
 * zlib when a name of it is first read (tools/bundle-cli.mjs), so a class made as the module
 * loads cost every command zlib's load (5-12 ms under bin/gantry's flag), a no-op rebuild too.
 */
function defineStrictGunzip() {
  return class StrictGunzip extends Gunzip {
    private readonly counter: ExpansionCounter;
    /** Compressed bytes given to zlib so far; zlib's `bytesWritten` says how many it took. */
    private received = 0;
    private ended = false;

    constructor(bound?: ExpansionBound) {
      super({ chunkSize: 1024 * 1024 });
      this.counter = new ExpansionCounter(bound);
    }

    override _transform(chunk: Buffer, encoding: BufferEncoding, done: TransformCallback): void {
      // Input after zlib ended the output is not a gzip member: it would have raised a header error.
      if (this.ended && chunk.length > 0) {
        done(trailingData(chunk.length));
        return;
      }
      this.received += chunk.length;
      super._transform(chunk, encoding, done);
    }

    override push(chunk: unknown, encoding?: BufferEncoding): boolean {
      if (chunk === null) {
        this.ended = true;
        // zlib ends its output early when it stops taking input after the last member.
        const left = this.received - this.bytesWritten;
        if (left > 0) {
          this.destroy(trailingData(left));
          return false;
        }
      } else {
        const tooMuch = this.counter.add((chunk as Buffer).length);
        if (tooMuch) {
          this.destroy(tooMuch);
          return false;
        }
      }
      return super.push(chunk, encoding);
    }
  }
}

function trailingData(bytes: number): Error {
  return new Error(`${bytes} bytes follow the end of the gzip stream`);
}
