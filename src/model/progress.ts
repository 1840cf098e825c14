/** What long operations report while they run; the CLI renders it, the library never prints. */
export interface ProgressEvent {
  /** A short stable name of the step: "base", "layer", "write", "push", "pull"... */
  step: string;
  /** One human line, e.g. "packed layer 1/2: 3.2 MB (gzip)". */
  message: string;
}

export type ProgressListener = (event: ProgressEvent) => void;
