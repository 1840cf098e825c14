import { digestHex, type Digest } from "../../model/digest.js";

/** The fixed names of the OCI image layout spec, shared by its reader and writers. */

/** The file at the layout's root that marks it as one and states its version. */
export const OCI_LAYOUT_FILE = "oci-layout";
/** The layout's top-level index, listing its images and indexes. */
export const OCI_INDEX_FILE = "index.json";
/** The index annotation naming an entry: its tag, or the REF of oci:DIR:REF. */
export const ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name";
/** containerd (and Docker 25+ `docker save`) put the full image name here. */
export const ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name";

/** Where a layout keeps the blob of `digest`, relative to its root: `blobs/sha256/HEX`. */
export function blobPath(digest: Digest): string {
  return `blobs/sha256/${digestHex(digest)}`;
}
