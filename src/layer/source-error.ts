import { openSync } from "node:fs";
import { GantryError, SourceUnreadableError } from "../model/errors.js";

/**
 * The error for a host file of a copyToRoot source that cannot be read, at walk, hash or
 * pack time: code SOURCE_UNREADABLE, naming the host path and the reason.
 */
export function sourceUnreadable(hostPath: string, err: unknown): GantryError {
  if (err instanceof GantryError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const reason = code === "ENOENT" ? "does not exist (was it removed while the layer was built?)"
    : code === "EACCES" || code === "EPERM" ? "is not readable (permission denied)"
    : code === "ENOTDIR" ? "is not a directory"
    : code === "ELOOP" ? "is a symbolic link loop"
    : ((err as Error | undefined)?.message ?? String(err));
  return new SourceUnreadableError(`the source ${hostPath} ${reason}; check the copyToRoot sources of the spec`, { cause: err });
}

/** Opens a host source file for reading: its descriptor, or SOURCE_UNREADABLE naming it. */
export function openSourceSync(hostPath: string): number {
  try {
    return openSync(hostPath, "r");
  } catch (err) {
    throw sourceUnreadable(hostPath, err);
  }
}
