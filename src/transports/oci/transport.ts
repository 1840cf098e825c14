import { stat } from "node:fs/promises";
import { DirBag } from "../../archive/file-bag.js";
import { OCI_LAYOUT_FILE } from "./names.js";
import { layoutTransport } from "./layout-transport.js";
import { checkLayoutDestination, writeOciLayout } from "./write.js";

export type { LayoutReference } from "./layout-transport.js";

async function isLayoutDirectory(path: string): Promise<boolean> {
  const st = await stat(path).catch(() => undefined);
  return st?.isDirectory() === true && await new DirBag(path).has(OCI_LAYOUT_FILE);
}

/** `oci:DIR[:REF]`: an OCI image layout directory; writing adds to an existing one, as skopeo does. */
export const ociTransport = layoutTransport({
  name: "oci",
  noun: "the OCI layout",
  shape: "dir",
  write: (ref, items, opts) => writeOciLayout(ref.path, items, { refName: ref.refName, signal: opts.signal, onProgress: opts.onProgress }),
  checkWritable: (ref) => checkLayoutDestination(ref.path),
  recognize: async (path) => ((await isLayoutDirectory(path)) ? { path } : undefined),
});
