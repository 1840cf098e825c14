import { openBag } from "../../archive/open.js";
import type { FileBag } from "../../archive/file-bag.js";
import type { ReadOptions, Transport } from "../transport.js";
import { checkOciRefName, pathRelativeTo, splitPathAndRest } from "../path-reference.js";
import { listLayout, readLayout } from "./read.js";

/**
 * What `oci:` and `oci-archive:` share: the `PATH[:REF]` spelling and reading a layout
 * through a FileBag (a directory, or a tar read by range). They differ only in the shape
 * of the bag, how they write, and what a bare path of theirs looks like.
 */

/** An `oci:` or `oci-archive:` reference: the layout's path, and the ref name of the entry it names, if any. */
export interface LayoutReference {
  readonly path: string;
  /** org.opencontainers.image.ref.name */
  readonly refName?: string | undefined;
}

type LayoutTransport = Transport<LayoutReference>;

/** What sets `oci:` and `oci-archive:` apart, for layoutTransport. */
export interface LayoutTransportParts {
  name: string;
  /** "the OCI layout", "the OCI archive": how messages name the place. */
  noun: string;
  shape: "dir" | "tar";
  write: NonNullable<LayoutTransport["write"]>;
  checkWritable?: LayoutTransport["checkWritable"];
  recognize: NonNullable<LayoutTransport["recognize"]>;
  archiveFile?: LayoutTransport["archiveFile"];
}

/** A layout transport from its parts: the `PATH[:REF]` spelling, reading and listing shared, the rest its own. */
export function layoutTransport(parts: LayoutTransportParts): LayoutTransport {
  const prefix = `${parts.name}:`;
  const format = (ref: LayoutReference): string => `${prefix}${ref.path}${ref.refName === undefined ? "" : `:${ref.refName}`}`;
  const open = (ref: LayoutReference, opts: ReadOptions): Promise<FileBag> => openBag(ref.path, format(ref), parts.shape, opts.signal);
  const transport: LayoutTransport = {
    name: parts.name,
    prefix,
    holdsIndexes: true,
    parse(body, spelled) {
      const { path, rest } = splitPathAndRest(body, spelled, `${prefix}PATH[:REF]`);
      return rest === undefined ? { path } : { path, refName: checkOciRefName(rest, spelled) };
    },
    relativeTo: pathRelativeTo,
    format,
    read: async (ref, opts) => readLayout(await open(ref, opts), `${parts.noun} ${ref.path}`, {
      refName: ref.refName, pick: opts.pick, firstOfMany: opts.firstOfMany,
    }, opts.signal),
    list: async (ref, opts) => listLayout(await open(ref, opts)),
    write: parts.write,
    recognize: parts.recognize,
  };
  if (parts.checkWritable) transport.checkWritable = parts.checkWritable;
  if (parts.archiveFile) transport.archiveFile = parts.archiveFile;
  return transport;
}
