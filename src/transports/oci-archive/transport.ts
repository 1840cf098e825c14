import { tarEntryNames } from "../../archive/open.js";
import { DOCKER_MANIFEST, LEGACY_REPOSITORIES } from "../docker-archive/names.js";
import { OCI_INDEX_FILE, OCI_LAYOUT_FILE } from "../oci/names.js";
import { layoutTransport } from "../oci/layout-transport.js";
import { writeOciArchive } from "../oci/write.js";

/** `oci-archive:PATH[:REF]`: a tar of an OCI image layout, read by range without unpacking. */
export const ociArchiveTransport = layoutTransport({
  name: "oci-archive",
  noun: "the OCI archive",
  shape: "tar",
  write: (ref, items, opts) => writeOciArchive(ref.path, items, {
    refName: ref.refName, signal: opts.signal, onProgress: opts.onProgress, written: opts.writtenArchives, assembly: opts.assembly, ...(opts.output ? { output: opts.output } : {}),
  }),
  archiveFile: (ref) => (ref.path === "-" ? undefined : ref.path),
  /** A tar holding a layout and nothing of a docker-archive (which the build's archives also are). */
  async recognize(path, mode) {
    if (mode !== "read") return undefined;
    const names = await tarEntryNames(path);
    if (!names || names.has(DOCKER_MANIFEST) || names.has(LEGACY_REPOSITORIES)) return undefined;
    return names.has(OCI_INDEX_FILE) || names.has(OCI_LAYOUT_FILE) ? { path } : undefined;
  },
});
