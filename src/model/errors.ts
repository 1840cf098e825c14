/**
 * Every failure gantry reports is a GantryError with a stable `code`.
 * Only the CLI turns one into an exit status; the library throws.
 * `message` is one sentence naming the file, reference or spec field at fault.
 */
export type ErrorCode =
  | "SPEC_INVALID"        // the build spec is malformed or a field has a bad value
  | "SOURCE_UNREADABLE"   // a copyToRoot source or spec file cannot be read
  | "REFERENCE_INVALID"   // an image reference cannot be parsed
  | "IMAGE_NOT_FOUND"     // the archive/layout/registry does not hold the requested image
  | "FORMAT_INVALID"      // an archive/layout is truncated, malformed or of an unknown kind
  | "DIGEST_MISMATCH"     // a blob's bytes do not match its declared digest or diff_id
  | "UNSAFE_PATH"         // a layer entry would escape its root, or a name is forbidden
  | "REGISTRY"            // the registry refused or failed a request
  | "ENGINE"              // the Docker engine (or podman's service) cannot be reached, refused or failed a request
  | "AUTH"                // credentials missing or refused
  | "RUNTIME"             // runAsRoot / extraCommands failed or cannot run
  | "IO"                  // a file system operation failed
  | "ABORTED"             // the caller's AbortSignal fired
  | "UNSUPPORTED";        // a valid request gantry does not implement

export class GantryError extends Error {
  readonly code: ErrorCode;
  /** Whether trying the same operation again could succeed (network hiccups, 5xx, 429). */
  readonly retryable: boolean;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options?.retryable ?? false;
  }
}

export class SpecError extends GantryError {
  constructor(message: string, options?: { cause?: unknown }) { super("SPEC_INVALID", message, options); }
}
export class FormatError extends GantryError {
  constructor(message: string, options?: { cause?: unknown }) { super("FORMAT_INVALID", message, options); }
}
export class DigestMismatchError extends GantryError {
  constructor(message: string) { super("DIGEST_MISMATCH", message); }
}
export class ImageNotFoundError extends GantryError {
  constructor(message: string) { super("IMAGE_NOT_FOUND", message); }
}
export class UnsafePathError extends GantryError {
  constructor(message: string) { super("UNSAFE_PATH", message); }
}
export class ReferenceError_ extends GantryError {
  constructor(message: string) { super("REFERENCE_INVALID", message); }
}
export class RegistryError extends GantryError {
  readonly status: number | undefined;
  constructor(message: string, options?: { cause?: unknown; retryable?: boolean; status?: number }) {
    super("REGISTRY", message, options);
    this.status = options?.status;
  }
}
export class EngineError extends GantryError {
  /** The engine's HTTP status, when it answered at all. */
  readonly status: number | undefined;
  constructor(message: string, options?: { cause?: unknown; status?: number }) {
    super("ENGINE", message, options);
    this.status = options?.status;
  }
}
export class AuthError extends GantryError {
  constructor(message: string, options?: { cause?: unknown }) { super("AUTH", message, options); }
}
export class RuntimeError extends GantryError {
  constructor(message: string, options?: { cause?: unknown }) { super("RUNTIME", message, options); }
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
  return new GantryError("IO", `${what} ${reason}`, { cause: err });
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new GantryError("ABORTED", "the operation was aborted", { cause: signal.reason });
}
