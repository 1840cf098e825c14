import { stat } from "node:fs/promises";
import { openBag } from "../../archive/open.js";
import { DirBag } from "../../archive/file-bag.js";
import type { Transport } from "../transport.js";
import { checkOciRefName, splitPathAndRest, pathRelativeTo } from "../path-reference.js";
import { OCI_LAYOUT_FILE } from "./names.js";
import { listLayout, readLayout } from "./read.js";
import { checkLayoutDestination, writeOciLayout } from "./write.js";

/** `oci:DIR[:REF]` and `oci-archive:PATH[:REF]`: an OCI image layout, as a directory or a tar of one. */
export interface LayoutReference {
  readonly path: string;
  /** org.opencontainers.image.ref.name */
  readonly refName?: string | undefined;
}

export function parseLayoutReference(prefix: string) {
  return (body: string, spelled: string): LayoutReference => {
    const { path, rest } = splitPathAndRest(body, spelled, `${prefix}PATH[:REF]`);
    return rest === undefined ? { path } : { path, refName: checkOciRefName(rest, spelled) };
  };
}

export function formatLayoutReference(prefix: string) {
  return (ref: LayoutReference): string => `${prefix}${ref.path}${ref.refName === undefined ? "" : `:${ref.refName}`}`;
}

async function isLayoutDirectory(path: string): Promise<boolean> {
  const st = await stat(path).catch(() => undefined);
  return st?.isDirectory() === true && await new DirBag(path).has(OCI_LAYOUT_FILE);
}

export const ociTransport: Transport<LayoutReference> = {
  name: "oci",
  prefix: "oci:",
  holdsIndexes: true,
  parse: parseLayoutReference("oci:"),
  relativeTo: pathRelativeTo,
  format: formatLayoutReference("oci:"),
  async read(ref, opts) {
    const bag = await openBag(ref.path, ociTransport.format(ref), "dir", opts.signal);
    return readLayout(bag, `the OCI layout ${ref.path}`, { refName: ref.refName, pick: opts.pick, firstOfMany: opts.firstOfMany }, opts.signal);
  },
  async list(ref, opts) {
    return listLayout(await openBag(ref.path, ociTransport.format(ref), "dir", opts.signal));
  },
  write: (ref, items, opts) => writeOciLayout(ref.path, items, { refName: ref.refName, signal: opts.signal }),
  checkWritable: (ref) => checkLayoutDestination(ref.path),
  async recognize(path) {
    return (await isLayoutDirectory(path)) ? { path } : undefined;
  },
};
