import { Format, MultiBar, type Options, type Params, type SingleBar } from "cli-progress";
import type { ProgressEvent, ProgressListener } from "../model/progress.js";
import { formatSize } from "../util/format.js";

/**
 * How progress is shown on stderr:
 * - "tty": a live bar per piece of work under way (a layer being packed, a blob being sent,
 *   an archive being written), redrawn in place, with the step lines scrolling above;
 * - "plain": the step lines only, one per line, for logs and pipes;
 * - "quiet": nothing.
 */
export type ProgressMode = "tty" | "plain" | "quiet";

/** A way of showing progress: the listener to give the library, and how to stop showing it. */
export interface ProgressView {
  listener: ProgressListener;
  /** Clears the bars still drawn and gives the terminal back (before a result or an error line). */
  stop(): void;
}

const BAR_SIZE = 20;
/** Room on a line for what follows the label: the bar, the sizes and the rate. */
const FIGURES_WIDTH = BAR_SIZE + 40;
/** A label is never cut shorter than this (lines are not wrapped, so a narrow terminal cuts them). */
const MIN_LABEL = 24;
const REDRAW_MS = 100;

/** The progress view for `mode`, drawn on `stream` (stderr by default). */
export function progressView(mode: ProgressMode, stream: NodeJS.WriteStream = process.stderr): ProgressView {
  if (mode === "quiet") return { listener: () => {}, stop() {} };
  if (mode === "plain") return { listener: plainLines(stream), stop() {} };
  return liveBars(stream);
}

function plainLines(stream: NodeJS.WriteStream): ProgressListener {
  // A byte count repeats what the step lines say; logs get the lines alone.
  return (e) => { if (e.bytes === undefined) stream.write(`${e.message}\n`); };
}

interface Piece {
  bar: SingleBar;
  started: number;
}

function liveBars(stream: NodeJS.WriteStream): ProgressView {
  const pieces = new Map<string, Piece>();
  const bars = new MultiBar({
    stream,
    format: barLine,
    barsize: BAR_SIZE,
    hideCursor: true,
    clearOnComplete: true,
    // The command's own SIGINT handling cleans up; the view is stopped before its last line.
    gracefulExit: false,
    linewrap: false,
    fps: 1000 / REDRAW_MS,
    forceRedraw: true,
    // Asked for bars off a terminal (--progress tty into a CI log): a snapshot of them each second.
    noTTYOutput: stream.isTTY !== true,
    notTTYSchedule: 1000,
  });
  let drawing = false;
  const line = (text: string): void => {
    if (drawing) bars.log(`${text}\n`);
    else stream.write(`${text}\n`);
  };
  const finish = (id: string, e: ProgressEvent): void => {
    const piece = pieces.get(id);
    if (piece === undefined) return;
    pieces.delete(id);
    const seconds = (Date.now() - piece.started) / 1000;
    line(`${e.message}: ${formatSize(e.bytes!.done)} in ${seconds.toFixed(1)} s`);
    bars.remove(piece.bar);
    if (pieces.size === 0) {
      bars.stop();
      drawing = false;
    }
  };
  const listener: ProgressListener = (e) => {
    const b = e.bytes;
    if (b === undefined) return line(e.message);
    if (b.final) return finish(b.id, e);
    const payload = { label: fitLabel(e.message, stream.columns) };
    const piece = pieces.get(b.id);
    if (piece === undefined) {
      drawing = true;
      pieces.set(b.id, { bar: bars.create(b.total ?? 0, b.done, payload), started: Date.now() });
      return;
    }
    if (b.total !== undefined) piece.bar.setTotal(b.total);
    piece.bar.update(b.done, payload);
  };
  return {
    listener,
    stop() {
      if (!drawing) return;
      bars.stop();
      drawing = false;
      pieces.clear();
    },
  };
}

/** The label, cut to leave the bar and the figures room on one terminal line. */
function fitLabel(label: string, columns: number | undefined): string {
  const room = Math.max(MIN_LABEL, (columns || 80) - FIGURES_WIDTH);
  return label.length <= room ? label : `${label.slice(0, room - 1)}…`;
}

/** `packing new layer 2 [=====-----] 12.3 MB / 40.1 MB  8.2 MB/s` (no bar when the total is unknown). */
function barLine(options: Options, params: Params, payload: { label?: string }): string {
  const seconds = Math.max((Date.now() - params.startTime) / 1000, 0.001);
  const rate = `${formatSize(Math.round(params.value / seconds))}/s`;
  const label = payload.label ?? "";
  if (params.total <= 0) return `${label}  ${formatSize(params.value)}  ${rate}`;
  const bar = Format.BarFormat(Math.min(params.progress, 1), options);
  return `${label} [${bar}] ${formatSize(params.value)} / ${formatSize(params.total)}  ${rate}`;
}
