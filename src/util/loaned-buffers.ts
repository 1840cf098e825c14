import { MessageChannel, type MessagePort } from "node:worker_threads";

/**
 * Buffers whose memory is given back the moment the last stage of a pipeline is done
 * with them, instead of whenever the garbage collector next runs.
 *
 * Node frees an ArrayBuffer's memory only when V8 finds it unreachable, and V8 collects
 * for memory outside its heap only after some 64 MiB more of it has been allocated. A
 * layer streamed as compressed blocks (each a fresh ArrayBuffer from zlib, half a MiB)
 * thus carried 50–60 MiB of dead blocks at its peak, a third of the build's resident
 * memory (bench/README.md).
 *
 * The producer `lend`s a Buffer that owns its whole ArrayBuffer, keeping no other
 * reference to it; the stages between pass it on unchanged; the stage that ends its
 * journey (a file write) calls `giveBack` when done. Giving back detaches the ArrayBuffer
 * by transferring it to a message port whose other end is closed: the message is dropped
 * and its memory freed at once. A Buffer that was not lent is left alone, so a stage that
 * does not know of loans, or a producer that does not lend, costs only the GC's delay.
 */

const lent = new WeakSet<ArrayBuffer>();

/**
 * Smaller ArrayBuffers are never lent: Buffer's shared pool slabs (8 KiB) are among them,
 * and detaching one would break every Buffer cut from it.
 */
const MIN_LOAN = 64 * 1024;

/**
 * Marks `buffer` as lent: its ArrayBuffer is the caller's alone and nobody will read it after
 * its last stage gives it back. Returns `buffer`. A Buffer too small, or on shared memory, is
 * returned unmarked.
 */
export function lend(buffer: Buffer): Buffer {
  const memory = buffer.buffer;
  if (memory instanceof ArrayBuffer && memory.byteLength >= MIN_LOAN) {
    lent.add(memory);
    droppingPort(); // begins closing its other end, so that a later turn can give back
  }
  return buffer;
}

/** Frees `buffer`'s memory now if it was lent (it is then empty); otherwise does nothing. */
export function giveBack(buffer: Buffer): void {
  const memory = buffer.buffer;
  if (!(memory instanceof ArrayBuffer) || !lent.has(memory)) return;
  const sink = droppingPort();
  if (sink === undefined) return;
  lent.delete(memory);
  sink.postMessage(null, [memory]);
}

let port: MessagePort | undefined;
let portClosed = false;

/**
 * A port whose other end is closed, once the close has taken effect; until then (the first
 * turn of the event loop) messages would still queue, so nothing is given back yet.
 */
function droppingPort(): MessagePort | undefined {
  if (port === undefined) {
    const channel = new MessageChannel();
    port = channel.port1;
    port.unref();
    port.once("close", () => { portClosed = true; });
    channel.port2.close();
  }
  return portClosed ? port : undefined;
}
