import type { Writable } from "node:stream";
import { ChunkedTarSink, type ChunkSource } from "../tar/sink.js";

/**
 * The tar bytes a layer's blocks hold, unless the compressor gives its own: large enough
 * that a block costs little, small enough to sit in cache.
 */
const BLOCK_BYTES = 1024 * 1024;

/**
 * The layer's tar in blocks: each is told to `onBlock` (hashing, progress), then written to
 * the compressor, and the writer waits until it is taken. A compressor that gives the space
 * of its own block (`source`, compression.ts compressorInputSpace) has the tar written
 * straight into it, so no byte is copied between the tar and the compressor; otherwise
 * blocks are BLOCK_BYTES of their own.
 */
export class BlockSink extends ChunkedTarSink {
  constructor(private readonly out: Writable, source: ChunkSource, private readonly onBlock: (block: Buffer) => void) {
    super(BLOCK_BYTES, source);
  }

  protected handOn(block: Buffer): Promise<void> {
    this.onBlock(block);
    return new Promise((resolve, reject) => {
      // A Transform whose output waits to be read keeps the write's callback until it is; if
      // the pipeline is torn down meanwhile (an interrupt), that callback never comes, and
      // nothing else would keep the process alive: the build would end silently, exit code 0.
      // The stream's closing settles the write instead.
      // (A stream destroyed already calls back with an error.)
      const closed = (): void => reject(new Error("the compressor was closed before it took the layer's next block"));
      this.out.once("close", closed);
      this.out.write(block, (err) => {
        this.out.off("close", closed);
        if (err) reject(err);
        else resolve();
      });
    });
  }
}
