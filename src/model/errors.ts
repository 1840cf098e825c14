/**
 * Every failure gantry reports is a GantryError with a stable `code`, and each code has
 * exactly one class, so callers can test either `err.code` or `instanceof`.
 * Only the CLI turns one into an exit status; the library throws.
 * `message` is one sentence naming the file, reference or spec field at fault.
 */
export type ErrorCode =
  | "SPEC_INVALID"        // the build spec is malformed or a field has a bad value
  | "SOURCE_UNREADABLE"   // a copyToRoot source or spec file cannot be read
  | "REFERENCE_INVALID"   // an image reference cannot be parsed, or could mean several images
  | "IMAGE_NOT_FOUND"     // the archive/layout/registry/engine does not hold the requested image
  | "FORMAT_INVALID"      // an archive/layout/manifest is truncated, malformed or of an unknown kind
  | "DIGEST_MISMATCH"     // a blob's bytes do not match its declared digest or diff_id
  | "UNSAFE_PATH"         // a layer entry would escape its root, or a name is forbidden
  | "REGISTRY"            // the registry refused or failed a request
  | "AUTH"                // credentials missing or refused
  | "ENGINE"              // the Docker engine (or podman's service) cannot be reached, refused or failed a request
  | "RUNTIME"             // runAsRoot / extraCommands failed or cannot run
  | "IO"                  // a file system operation failed
  | "ABORTED"             // the caller's AbortSignal fired
  | "UNSUPPORTED";        // a valid request gantry does not implement

interface ErrorOptions { cause?: unknown; retryable?: boolean }

/**
 * A message as one line: line breaks (a script's output, a quoted file) become "; ", and
 * other control characters (from a damaged file quoted in the message) are escaped, so a
 * message never moves a terminal's cursor or splits a log line.
 */
function oneLine(message: string): string {
  return message
    .replace(/\s*[\r\n]+\s*/g, "; ")
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
    .trim();
}

/**
 * The base of every error gantry throws: `code` names the kind, `message` is one line
 * (line breaks become "; ", control characters are escaped), `cause` keeps the underlying error.
 */
export abstract class GantryError extends Error {
  abstract readonly code: ErrorCode;
  /** Whether trying the same operation again could succeed (network hiccups, 5xx, 429). */
  readonly retryable: boolean;
  constructor(message: string, options?: ErrorOptions) {
    super(oneLine(message), options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.retryable = options?.retryable ?? false;
  }
}

/** Raised when the build spec is malformed or a field has a bad value; code `SPEC_INVALID`. */
export class SpecError extends GantryError {
  readonly code = "SPEC_INVALID";
}
/** Raised when a copyToRoot source or a spec file cannot be read; code `SOURCE_UNREADABLE`. */
export class SourceUnreadableError extends GantryError {
  readonly code = "SOURCE_UNREADABLE";
}
/** Raised when an image reference cannot be parsed, or could mean several images; code `REFERENCE_INVALID`. */
export class InvalidReferenceError extends GantryError {
  readonly code = "REFERENCE_INVALID";
}
/** Raised when the archive, layout, registry or engine does not hold the requested image; code `IMAGE_NOT_FOUND`. */
export class ImageNotFoundError extends GantryError {
  readonly code = "IMAGE_NOT_FOUND";
}
/** Raised when an archive, layout or manifest is truncated, malformed or of an unknown kind; code `FORMAT_INVALID`. */
export class FormatError extends GantryError {
  readonly code = "FORMAT_INVALID";
}
/** Raised when a blob's bytes do not match its declared digest or diff_id; code `DIGEST_MISMATCH`. */
export class DigestMismatchError extends GantryError {
  readonly code = "DIGEST_MISMATCH";
}
/** Raised when a layer entry or link would escape its root, or a name is forbidden; code `UNSAFE_PATH`. */
export class UnsafePathError extends GantryError {
  readonly code = "UNSAFE_PATH";
}
/** Raised when a registry refuses or fails a request; code `REGISTRY`. */
export class RegistryError extends GantryError {
  readonly code = "REGISTRY";
  /** The registry's HTTP status, when it answered at all. */
  readonly status: number | undefined;
  /** How long the registry asked to be left alone (its Retry-After), in milliseconds. */
  readonly retryAfterMs: number | undefined;
  constructor(message: string, options?: ErrorOptions & { status?: number; retryAfterMs?: number }) {
    super(message, options);
    this.status = options?.status;
    this.retryAfterMs = options?.retryAfterMs;
  }
}
/** Raised when registry credentials are missing or refused; code `AUTH`. */
export class AuthError extends GantryError {
  readonly code = "AUTH";
}
/** Raised when the Docker engine (or podman's service) cannot be reached, refuses or fails a request; code `ENGINE`. */
export class EngineError extends GantryError {
  readonly code = "ENGINE";
  /** The engine's HTTP status, when it answered at all. */
  readonly status: number | undefined;
  constructor(message: string, options?: ErrorOptions & { status?: number }) {
    super(message, options);
    this.status = options?.status;
  }
}
/** Raised when runAsRoot or extraCommands fail, or no sandbox can run them; code `RUNTIME`. */
export class RuntimeError extends GantryError {
  readonly code = "RUNTIME";
}
/** Raised when a file system operation fails (see ioError); code `IO`. */
export class IoError extends GantryError {
  readonly code = "IO";
}
/** Raised when the caller's AbortSignal fires; code `ABORTED`. The signal's reason, if any, is the `cause`. */
export class AbortedError extends GantryError {
  readonly code = "ABORTED";
  constructor(reason?: unknown, message = "the operation was aborted") {
    super(message, reason === undefined ? undefined : { cause: reason });
  }
}
/** Raised for a valid request gantry does not implement; code `UNSUPPORTED`. */
export class UnsupportedError extends GantryError {
  readonly code = "UNSUPPORTED";
}

/** Turns an arbitrary thrown value from the file system into a GantryError naming `what`. */
export function ioError(what: string, err: unknown): GantryError {
  if (err instanceof GantryError) return err;
  const e = err as NodeJS.ErrnoException;
  const reason = e?.code === "ENOENT" ? "does not exist"
    : e?.code === "EACCES" || e?.code === "EPERM" ? "is not readable (permission denied)"
    : e?.code === "EISDIR" ? "is a directory"
    : e?.code === "ENOTDIR" ? "is not a directory"
    : e?.code === "ENOSPC" ? "cannot be written: no space left on device"
    : (e?.message ?? String(err));
  return new IoError(`${what} ${reason}`, { cause: err });
}

/** Throws an AbortedError, carrying the signal's reason, if `signal` has fired; otherwise does nothing. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortedError(signal.reason);
}

/** The error to report when work failed while `signal` fired: the abort, not its side effects. */
export function abortedOr(signal: AbortSignal | undefined, err: unknown): unknown {
  return signal?.aborted ? new AbortedError(signal.reason) : err;
}
