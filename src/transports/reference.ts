import { close, open } from "node:fs";
import { stat } from "node:fs/promises";
import { promisify } from "node:util";
import { InvalidReferenceError } from "../model/errors.js";
import { parseRepoTag } from "./image-name.js";
import { scanTar } from "../archive/tar-index.js";
import { DirBag } from "../archive/file-bag.js";

/**
 * Image references, spelled as skopeo spells them (SPEC "Image references").
 * `path: "-"` of a docker-archive is standard input (read) or standard output (write).
 */
export type ImageRef =
  | { readonly transport: "docker-archive"; readonly path: string; /** NAME:TAG */ readonly name?: string }
  | { readonly transport: "oci"; readonly path: string; /** org.opencontainers.image.ref.name */ readonly refName?: string }
  | { readonly transport: "oci-archive"; readonly path: string; readonly refName?: string }
  /** `ref` is what follows `docker://`; the registry module parses it. */
  | { readonly transport: "docker"; readonly ref: string };

export type Transport = ImageRef["transport"];

/** The spelling of standard input / output. */
export const STDIO = "-";

const DOCKER_PREFIX = "docker://";
/** skopeo transports gantry does not speak: named, so the error can say so instead of treating them as paths. */
const FOREIGN_TRANSPORTS = ["dir", "containers-storage", "docker-daemon", "ostree", "sif", "tarball"];

/** The OCI `org.opencontainers.image.ref.name` grammar. */
const OCI_REF_NAME = /^[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:\/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*$/;

const openFd = promisify(open);
const closeFd = promisify(close);

function invalid(s: string, why: string): InvalidReferenceError {
  return new InvalidReferenceError(`the image reference "${s}" is invalid: ${why}`);
}

/** Splits `PATH[:REST]` at the first colon, as skopeo does (so PATH cannot hold one). */
function splitPathAndRest(s: string, body: string, spelling: string): { path: string; rest: string | undefined } {
  const colon = body.indexOf(":");
  const path = colon === -1 ? body : body.slice(0, colon);
  const rest = colon === -1 ? undefined : body.slice(colon + 1);
  if (path === "") throw invalid(s, `it names no path; write it as ${spelling}`);
  if (rest === "") throw invalid(s, `nothing follows the last ":"; write it as ${spelling}`);
  return { path, rest };
}

/** Parses a reference that names its transport; undefined for a bare path. */
export function parseTransportReference(s: string): ImageRef | undefined {
  if (s.startsWith(DOCKER_PREFIX)) {
    const ref = s.slice(DOCKER_PREFIX.length);
    if (ref === "") throw invalid(s, "it names no repository; write it as docker://HOST/REPOSITORY[:TAG][@sha256:DIGEST]");
    return { transport: "docker", ref };
  }
  const m = /^([a-z][a-z0-9-]*):(.*)$/s.exec(s);
  if (!m) return undefined;
  const [, transport, body] = m as unknown as [string, string, string];
  switch (transport) {
    case "docker-archive": {
      const { path, rest } = splitPathAndRest(s, body, "docker-archive:PATH[:NAME:TAG]");
      if (rest === undefined) return { transport, path };
      return { transport, path, name: parseRepoTag(rest, `the name in the reference "${s}"`).familiar };
    }
    case "oci":
    case "oci-archive": {
      const { path, rest } = splitPathAndRest(s, body, `${transport}:PATH[:REF]`);
      if (rest === undefined) return { transport, path };
      if (!OCI_REF_NAME.test(rest)) {
        throw invalid(s, `"${rest}" is not a valid OCI reference name (letters, digits and separators . _ - : @ + /)`);
      }
      return { transport, path, refName: rest };
    }
    case "docker":
      throw invalid(s, "a registry reference starts with docker:// (two slashes), e.g. docker://example.com/app:1.0");
    default:
      if (FOREIGN_TRANSPORTS.includes(transport)) {
        throw invalid(s, `the "${transport}:" transport is not supported; use docker-archive:, oci:, oci-archive: or docker://`);
      }
      return undefined; // a path that merely contains a colon
  }
}

/** Entry names of an uncompressed tar, or undefined when the file is not one (say, compressed). */
async function tarNames(path: string): Promise<Set<string> | undefined> {
  let fd: number;
  try {
    fd = await openFd(path, "r");
  } catch {
    return undefined;
  }
  try {
    return new Set((await scanTar(fd, path)).keys());
  } catch {
    return undefined;
  } finally {
    await closeFd(fd).catch(() => {});
  }
}

/** A bare path read: its transport decided by what it holds. */
async function detectForRead(s: string): Promise<ImageRef> {
  const st = await stat(s).catch(() => undefined);
  if (!st) throw invalid(s, "no such file or directory, and it names no transport (docker-archive:, oci:, oci-archive:, docker://)");
  if (st.isDirectory()) {
    const dir = new DirBag(s);
    if (await dir.has("oci-layout")) return { transport: "oci", path: s };
    if (await dir.has("manifest.json") || await dir.has("repositories")) return { transport: "docker-archive", path: s };
    throw invalid(s, "the directory is neither an OCI layout (no oci-layout file) nor an unpacked docker-archive (no manifest.json)");
  }
  const names = await tarNames(s);
  if (names && !names.has("manifest.json") && !names.has("repositories") && (names.has("index.json") || names.has("oci-layout"))) {
    return { transport: "oci-archive", path: s };
  }
  // manifest.json, legacy `repositories`, or a compressed tarball: docker load accepts all three.
  return { transport: "docker-archive", path: s };
}

/** A bare path written: an existing OCI layout directory is added to; anything else becomes a docker-archive. */
async function detectForWrite(s: string): Promise<ImageRef> {
  const st = await stat(s).catch(() => undefined);
  if (st?.isDirectory()) {
    if (await new DirBag(s).has("oci-layout")) return { transport: "oci", path: s };
    throw invalid(s, "it is a directory that is not an OCI layout; write to oci:DIR to make one, or name a file for a docker-archive");
  }
  return { transport: "docker-archive", path: s };
}

/**
 * Parses an image reference. A bare path is recognised by content when read (a directory
 * with `oci-layout` is oci:, a tar with manifest.json is docker-archive:, a tar with only
 * index.json is oci-archive:); `-` is standard input / output as a docker-archive.
 */
export async function resolveReference(s: string, mode: "read" | "write"): Promise<ImageRef> {
  if (s === "") throw new InvalidReferenceError("the image reference is empty; name an archive, a directory, or docker://HOST/REPOSITORY:TAG");
  if (s === STDIO) return { transport: "docker-archive", path: STDIO };
  const explicit = parseTransportReference(s);
  if (explicit) return explicit;
  return mode === "read" ? detectForRead(s) : detectForWrite(s);
}

/** The reference spelled back out, for messages. */
export function formatImageRef(ref: ImageRef): string {
  switch (ref.transport) {
    case "docker": return `${DOCKER_PREFIX}${ref.ref}`;
    case "docker-archive":
      if (ref.path === STDIO) return ref.name === undefined ? "standard input/output" : `standard input/output:${ref.name}`;
      return `docker-archive:${ref.path}${ref.name === undefined ? "" : `:${ref.name}`}`;
    case "oci":
    case "oci-archive": return `${ref.transport}:${ref.path}${ref.refName === undefined ? "" : `:${ref.refName}`}`;
  }
}
