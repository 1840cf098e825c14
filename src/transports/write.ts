import { InvalidReferenceError, UnsupportedError } from "../model/errors.js";
import type { ArchiveWriteOptions } from "../archive/archive-tar.js";
import { writeArchive } from "./docker-archive/write.js";
import type { ImageToWrite, WriteResult } from "./layout-plan.js";
import { writeOciArchive, writeOciLayout } from "./oci/write.js";
import { formatImageRef, resolveReference, type ImageRef } from "./reference.js";
import type { RegistryOptions } from "./docker/options.js";

/**
 * Writing images to any reference. Files and directories are written here; registries
 * through a hook the registry module registers, as for reading.
 */

export type { ImageToWrite, WriteResult } from "./layout-plan.js";

export interface WriteOptions {
  signal?: AbortSignal;
  /** Where a `-` destination writes; standard output when absent. */
  output?: ArchiveWriteOptions["output"];
  /** Credentials, TLS and manifest format for `docker://` destinations. */
  registry?: RegistryOptions & { format?: "oci" | "v2s2" };
}

export type RegistryWriter = (ref: string, images: readonly ImageToWrite[], opts: WriteOptions) => Promise<WriteResult>;

let registryWriter: RegistryWriter | undefined;

/** Called once by the registry module, so `docker://` references can be written. */
export function setRegistryWriter(fn: RegistryWriter): void {
  registryWriter = fn;
}

/** A name in the reference (docker-archive:PATH:NAME:TAG) is the tag of the one image written, as with skopeo. */
function withReferenceName(ref: ImageRef & { transport: "docker-archive" }, images: readonly ImageToWrite[]): readonly ImageToWrite[] {
  if (ref.name === undefined) return images;
  if (images.length !== 1) {
    throw new InvalidReferenceError(`the reference ${formatImageRef(ref)} names one image, but ${images.length} are being written; drop the name and tag the images instead`);
  }
  return [{ image: images[0]!.image, repoTags: [ref.name] }];
}

export async function writeImage(dest: string | ImageRef, images: readonly ImageToWrite[], opts: WriteOptions = {}): Promise<WriteResult> {
  const ref = typeof dest === "string" ? await resolveReference(dest, "write") : dest;
  const signal = opts.signal !== undefined ? { signal: opts.signal } : {};
  switch (ref.transport) {
    case "docker":
      if (!registryWriter) throw new UnsupportedError(`writing docker://${ref.ref} needs the registry module, which is not loaded`);
      return registryWriter(ref.ref, images, opts);
    case "docker-archive":
      return writeArchive(ref.path, withReferenceName(ref, images), { ...signal, ...(opts.output ? { output: opts.output } : {}) });
    case "oci":
      return writeOciLayout(ref.path, images, { ...signal, ...(ref.refName !== undefined ? { refName: ref.refName } : {}) });
    case "oci-archive":
      return writeOciArchive(ref.path, images, { ...signal, ...(ref.refName !== undefined ? { refName: ref.refName } : {}) });
  }
}
