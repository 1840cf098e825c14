import { InvalidReferenceError } from "../../model/errors.js";
import type { Digest } from "../../model/digest.js";

/**
 * A parsed registry reference: `docker://HOST/REPO[:TAG][@sha256:HEX]`, normalised the way
 * docker does it (no host means Docker Hub, a one-part Docker Hub name gains `library/`).
 */
export interface RegistryReference {
  /** The registry as users name it: "docker.io", "127.0.0.1:5000", "[::1]:5000". */
  readonly registry: string;
  /** The repository path, e.g. "library/ubuntu". */
  readonly repository: string;
  /** The tag, if any; "latest" when neither a tag nor a digest was given. */
  readonly tag?: string;
  readonly digest?: Digest;
}

/** The prefix of registry references. */
export const DOCKER_TRANSPORT = "docker://";
/** The registry a reference with no host means. */
export const DOCKER_HUB = "docker.io";
/** The host Docker Hub's distribution API is actually served from. */
const DOCKER_HUB_API_HOST = "registry-1.docker.io";
const DEFAULT_TAG = "latest";

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const LABEL = "[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?";
const HOST = new RegExp(`^(?:${LABEL}(?:\\.${LABEL})*|\\[[0-9a-fA-F:.]+\\])(?::[0-9]{1,5})?$`);
const MAX_NAME_LENGTH = 255;

/** Whether `input` names a registry image (the `docker://` transport). */
export function isRegistryReference(input: string): boolean {
  return input.startsWith(DOCKER_TRANSPORT);
}

/**
 * Parses `docker://HOST/REPO[:TAG][@sha256:HEX]` or the part after `docker://`.
 * Throws InvalidReferenceError naming the reference and the part at fault.
 */
export function parseRegistryReference(input: string): RegistryReference {
  const text = isRegistryReference(input) ? input.slice(DOCKER_TRANSPORT.length) : input;
  const bad = (why: string): InvalidReferenceError =>
    new InvalidReferenceError(`the image reference "${input}" is invalid: ${why}; write it as docker://HOST/REPOSITORY[:TAG][@sha256:DIGEST]`);
  if (text === "") throw bad("it names no repository");

  const at = text.indexOf("@");
  const namePart = at === -1 ? text : text.slice(0, at);
  const digestPart = at === -1 ? undefined : text.slice(at + 1);
  if (digestPart !== undefined && !DIGEST.test(digestPart)) {
    throw bad(`"${digestPart}" is not a digest (sha256: followed by 64 lowercase hex digits)`);
  }

  // A tag is a colon after the last slash; a colon before it belongs to the host's port.
  const colon = namePart.lastIndexOf(":");
  const hasTag = colon > namePart.lastIndexOf("/");
  const name = hasTag ? namePart.slice(0, colon) : namePart;
  const tag = hasTag ? namePart.slice(colon + 1) : undefined;
  if (tag !== undefined && !TAG.test(tag)) {
    throw bad(`"${tag}" is not a valid tag (letters, digits, "_", "." and "-", at most 128, not starting with "." or "-")`);
  }

  const { registry, repository } = splitRegistry(name);
  if (!HOST.test(registry)) throw bad(`"${registry}" is not a valid registry host`);
  if (repository === "" || !repository.split("/").every((c) => COMPONENT.test(c))) {
    throw bad(`"${repository}" is not a valid repository name (lowercase letters, digits and separators ".", "_", "-", "/")`);
  }
  if (registry.length + 1 + repository.length > MAX_NAME_LENGTH) {
    throw bad(`the name is longer than ${MAX_NAME_LENGTH} characters`);
  }

  const ref: { registry: string; repository: string; tag?: string; digest?: Digest } = { registry, repository };
  if (tag !== undefined) ref.tag = tag;
  if (digestPart !== undefined) ref.digest = digestPart as Digest;
  if (tag === undefined && digestPart === undefined) ref.tag = DEFAULT_TAG;
  return ref;
}

/** Whether `tag` is a tag by docker's grammar. */
export function isTag(tag: string): boolean {
  return TAG.test(tag);
}

/** Whether `name` is an image name by docker's grammar, without a tag or a digest (`registry:5000/team/app`). */
export function isImageName(name: string): boolean {
  if (name.includes("@") || name.lastIndexOf(":") > name.lastIndexOf("/")) return false;
  try {
    parseRegistryReference(name);
    return true;
  } catch {
    return false;
  }
}

/** docker's rule: the first component is a host if it has a "." or ":", is "localhost", or has capitals. */
function splitRegistry(name: string): { registry: string; repository: string } {
  const slash = name.indexOf("/");
  const first = slash === -1 ? "" : name.slice(0, slash);
  const isHost = slash !== -1
    && (first.includes(".") || first.includes(":") || first === "localhost" || first !== first.toLowerCase());
  if (!isHost) {
    return { registry: DOCKER_HUB, repository: slash === -1 ? `library/${name}` : name };
  }
  const rest = name.slice(slash + 1);
  if (first === "index.docker.io" || first === DOCKER_HUB) {
    return { registry: DOCKER_HUB, repository: rest.includes("/") ? rest : `library/${rest}` };
  }
  return { registry: first, repository: rest };
}

/** The reference in full, e.g. "docker.io/library/ubuntu:22.04@sha256:…" (no transport prefix). */
export function formatReference(ref: RegistryReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag !== undefined ? `:${ref.tag}` : ""}${ref.digest !== undefined ? `@${ref.digest}` : ""}`;
}

/** What to ask `/v2/REPO/manifests/…` for: the digest when pinned, else the tag. */
export function manifestSelector(ref: RegistryReference): string {
  return ref.digest ?? ref.tag ?? DEFAULT_TAG;
}

/** The host:port the distribution API lives at (Docker Hub's differs from its name). */
export function apiHost(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_API_HOST : registry;
}
