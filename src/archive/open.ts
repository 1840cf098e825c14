import { open, stat } from "node:fs/promises";
import { FormatError, ioError } from "../model/errors.js";
import { DirBag, type FileBag } from "./file-bag.js";
import { TarBag, scanTar } from "./tar-index.js";

/**
 * Opens what a file-based reference names as a FileBag: a directory as it is, a tar (plain,
 * gzip or zstd) indexed once, standard input spooled once. `label` names the reference in
 * errors; `want` says which shapes the transport reads.
 */
export async function openBag(path: string, label: string, want: "dir" | "tar" | "either", signal?: AbortSignal): Promise<FileBag> {
  if (path === "-") return TarBag.fromStream(process.stdin, "standard input", signal);
  const st = await stat(path).catch((err: unknown) => { throw ioError(`the image ${label}`, err); });
  if (st.isDirectory()) {
    if (want === "tar") throw new FormatError(`${path} is a directory, not an archive; read it as oci:${path}`);
    return new DirBag(path);
  }
  if (want === "dir") throw new FormatError(`${path} is a file, not a layout directory; read it as oci-archive:${path} or docker-archive:${path}`);
  return TarBag.open(path, signal);
}

/** The entry names of an uncompressed tar, or undefined when the file is not one (say, compressed). */
export async function tarEntryNames(path: string): Promise<Set<string> | undefined> {
  let handle;
  try {
    handle = await open(path, "r");
  } catch {
    return undefined;
  }
  try {
    return new Set((await scanTar(handle.fd, path)).keys());
  } catch {
    return undefined;
  } finally {
    await handle.close().catch(() => {});
  }
}
