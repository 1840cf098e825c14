import { stat } from "node:fs/promises";
import { isAbsolute, resolve } from "node:path";
import { InvalidReferenceError, UnsupportedError } from "../model/errors.js";
import type { ImageOrIndex, ImageSummary } from "../model/image.js";
import { TRANSPORTS, STDIO_TRANSPORT } from "./list.js";
import type { ReadOptions, Transport, WriteItem, WriteOptions, WriteResult } from "./transport.js";

/**
 * Image references, spelled as skopeo spells them (SPEC "Image references"): `NAME:BODY`
 * for a transport named in the list, `docker://…` for a registry, `-` for standard input or
 * output (a docker-archive), and a bare path recognised by what is there.
 */

/** The spelling of standard input / output. */
export const STDIO = "-";

/** skopeo transports gantry does not speak: named, so the error says so instead of reading them as paths. */
const FOREIGN_TRANSPORTS = ["containers-storage", "ostree", "sif", "tarball"];

/** A parsed reference: its transport and what the transport made of the rest. */
export class ImageReference {
  constructor(readonly transport: Transport<unknown>, readonly value: unknown) {}

  toString(): string {
    return this.transport.format(this.value);
  }

  read(opts: ReadOptions = {}): Promise<ImageOrIndex> {
    if (!this.transport.read) throw new UnsupportedError(`images cannot be read from ${this}`);
    return this.transport.read(this.value, opts);
  }

  list(opts: ReadOptions = {}): Promise<ImageSummary[]> {
    if (!this.transport.list) throw new UnsupportedError(`gantry cannot list what ${this} holds`);
    return this.transport.list(this.value, opts);
  }

  write(items: readonly WriteItem[], opts: WriteOptions = {}): Promise<WriteResult> {
    if (!this.transport.write) throw new UnsupportedError(`images cannot be written to ${this}`);
    return this.transport.write(this.value, items, opts);
  }

  /** Refuses, before any work, a destination that cannot be written. */
  async checkWritable(opts: WriteOptions = {}): Promise<void> {
    if (!this.transport.write) throw new UnsupportedError(`images cannot be written to ${this}`);
    await this.transport.checkWritable?.(this.value, opts);
  }

  /** Whether the reference can name other content tomorrow (a registry tag rather than a digest). */
  get mutable(): boolean {
    return this.transport.mutable?.(this.value) ?? false;
  }

  /** The registry host it is in, for a registry reference. */
  get registry(): string | undefined {
    return this.transport.registry?.(this.value);
  }

  /** The file a write makes as one image archive (see Transport.archiveFile). */
  get archiveFile(): string | undefined {
    return this.transport.archiveFile?.(this.value);
  }

  get holdsIndexes(): boolean {
    return this.transport.holdsIndexes;
  }
}

function bind(transport: Transport<unknown>, value: unknown): ImageReference {
  return new ImageReference(transport, value);
}

function transportNamed(s: string): { transport: Transport<unknown>; body: string } | undefined {
  for (const t of TRANSPORTS) {
    if (s.startsWith(t.prefix)) return { transport: t, body: s.slice(t.prefix.length) };
  }
  return undefined;
}

/** Parses a reference that names its transport; undefined for a bare path. */
export function parseNamedReference(s: string): ImageReference | undefined {
  const named = transportNamed(s);
  if (named) return bind(named.transport, named.transport.parse(named.body, s));
  const m = /^([a-z][a-z0-9-]*):/.exec(s);
  if (m?.[1] === "docker") {
    throw new InvalidReferenceError(`the image reference "${s}" is invalid: a registry reference starts with docker:// (two slashes), e.g. docker://example.com/app:1.0`);
  }
  if (m?.[1] !== undefined && FOREIGN_TRANSPORTS.includes(m[1])) {
    const known = TRANSPORTS.map((t) => t.prefix).join(", ");
    throw new InvalidReferenceError(`the image reference "${s}" is invalid: the "${m[1]}:" transport is not supported; use one of ${known}`);
  }
  return undefined; // a path that merely contains a colon
}

/**
 * A reference written in a file (a spec's `fromImage`) with its relative path made absolute
 * against the file's directory; references that name no path are returned as they are.
 */
export function referenceRelativeTo(s: string, dir: string): string {
  if (s === STDIO) return s;
  const named = transportNamed(s);
  if (named) return `${named.transport.prefix}${named.transport.relativeTo?.(named.body, dir) ?? named.body}`;
  return isAbsolute(s) ? s : resolve(dir, s);
}

/** A bare path: the first transport in the list that claims it. */
async function recognize(s: string, mode: "read" | "write"): Promise<ImageReference> {
  if (mode === "read" && !(await stat(s).then(() => true, () => false))) {
    throw new InvalidReferenceError(`the image reference "${s}" is invalid: no such file or directory, and it names no transport (${TRANSPORTS.map((t) => t.prefix).join(", ")})`);
  }
  for (const t of TRANSPORTS) {
    const claimed = await t.recognize?.(s, mode);
    if (claimed !== undefined) return bind(t, claimed);
  }
  throw new InvalidReferenceError(mode === "read"
    ? `the image reference "${s}" is invalid: it is neither an image archive nor a layout (an OCI layout has an oci-layout file, a skopeo dir: layout a version file, a docker-archive a manifest.json), and it names no transport (${TRANSPORTS.map((t) => t.prefix).join(", ")})`
    : `the image reference "${s}" is invalid: it is a directory that is not an image layout; write to oci:DIR or dir:DIR to make one, or name a file for a docker-archive`);
}

/**
 * Parses an image reference. A bare path is recognised by content: for reading, a
 * directory with `oci-layout` is oci:, one with `version` dir:, a tar with manifest.json
 * docker-archive:, a tar with only index.json oci-archive:; for writing, an existing
 * layout is added to and anything else becomes a docker-archive. `-` is standard input or
 * output, as a docker-archive.
 */
export async function resolveReference(s: string, mode: "read" | "write"): Promise<ImageReference> {
  if (s === "") throw new InvalidReferenceError("the image reference is empty; name an archive, a directory, or docker://HOST/REPOSITORY:TAG");
  if (s === STDIO) return bind(STDIO_TRANSPORT, STDIO_TRANSPORT.parse(STDIO, STDIO));
  return parseNamedReference(s) ?? recognize(s, mode);
}
