import { WRITE_BUFFER, writeFullyAt } from "../util/io.js";
import { ChunkedTarSink, NotInPlaceError } from "./sink.js";

/**
 * A tar sink writing into an open file from offset 0, each chunk where it belongs, and able
 * to go past bytes the file already holds (`skip`): an archive whose layers were packed into
 * it in place (archive/assembly.ts) is finished around them without copying them again.
 * `position` is where the next byte goes, and once closed, the tar's length.
 */
export class FileTarSink extends ChunkedTarSink {
  private written = 0;

  /** `onBytes` is told every byte of the tar, written or gone past (a progress meter). */
  constructor(private readonly fd: number, private readonly onBytes?: (n: number) => void) {
    // Written a fileWriter's buffer at a time; the writer waits for each write, so one buffer serves them all.
    super(WRITE_BUFFER, "reuse");
  }

  /** The offset of the next byte: written bytes and skipped ones, buffered ones not yet. */
  get position(): number {
    return this.written;
  }

  async skip(count: number, at: number): Promise<void> {
    await this.close(); // what is buffered goes first
    if (this.written !== at) throw new NotInPlaceError(`bytes expected at offset ${at} of the archive would be at ${this.written}`);
    this.written += count;
    this.onBytes?.(count);
  }

  protected handOn(chunk: Buffer): Promise<void> {
    const at = this.written;
    this.written += chunk.length;
    this.onBytes?.(chunk.length);
    return writeFullyAt(this.fd, chunk, at);
  }
}
