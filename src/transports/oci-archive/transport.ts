import { openBag, tarEntryNames } from "../../archive/open.js";
import type { Transport } from "../transport.js";
import { DOCKER_MANIFEST, LEGACY_REPOSITORIES } from "../docker-archive/names.js";
import { OCI_INDEX_FILE, OCI_LAYOUT_FILE } from "../oci/names.js";
import { listLayout, readLayout } from "../oci/read.js";
import { writeOciArchive } from "../oci/write.js";
import { pathRelativeTo } from "../path-reference.js";
import { formatLayoutReference, parseLayoutReference, type LayoutReference } from "../oci/transport.js";

/** `oci-archive:PATH[:REF]`: a tar of an OCI image layout, read by range without unpacking. */
export const ociArchiveTransport: Transport<LayoutReference> = {
  name: "oci-archive",
  prefix: "oci-archive:",
  holdsIndexes: true,
  parse: parseLayoutReference("oci-archive:"),
  relativeTo: pathRelativeTo,
  format: formatLayoutReference("oci-archive:"),
  async read(ref, opts) {
    const bag = await openBag(ref.path, ociArchiveTransport.format(ref), "tar", opts.signal);
    return readLayout(bag, `the OCI archive ${ref.path}`, { refName: ref.refName, pick: opts.pick, firstOfMany: opts.firstOfMany }, opts.signal);
  },
  async list(ref, opts) {
    return listLayout(await openBag(ref.path, ociArchiveTransport.format(ref), "tar", opts.signal));
  },
  write: (ref, items, opts) => writeOciArchive(ref.path, items, {
    refName: ref.refName, signal: opts.signal, ...(opts.output ? { output: opts.output } : {}),
  }),
  /** A tar holding a layout and nothing of a docker-archive (which the build's archives also are). */
  async recognize(path, mode) {
    if (mode !== "read") return undefined;
    const names = await tarEntryNames(path);
    if (!names || names.has(DOCKER_MANIFEST) || names.has(LEGACY_REPOSITORIES)) return undefined;
    return names.has(OCI_INDEX_FILE) || names.has(OCI_LAYOUT_FILE) ? { path } : undefined;
  },
};
