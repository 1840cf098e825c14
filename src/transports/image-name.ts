import { InvalidReferenceError } from "../model/errors.js";
import { DOCKER_HUB, parseRegistryReference } from "./docker/reference.js";

/**
 * Image names as archives carry them (RepoTags, `repositories`, index annotations):
 * `NAME[:TAG]`, a missing tag meaning `latest`, no digest. Parsing is the registry
 * reference grammar; this module only decides the spellings archives use.
 */
export interface RepoTag {
  /** Fully qualified, as containerd annotates: `docker.io/library/app:latest`. */
  readonly full: string;
  /** As docker shows it: `app:latest`, `example.com/base:1`. */
  readonly familiar: string;
  /** `familiar` without its tag: the key of a `repositories` file. */
  readonly familiarName: string;
  readonly tag: string;
}

const LIBRARY_PREFIX = `${DOCKER_HUB}/library/`;
const HUB_PREFIX = `${DOCKER_HUB}/`;
/** podman names local, unqualified images `localhost/NAME`. */
const LOCALHOST_PREFIX = "localhost/";

function familiarOf(qualified: string): string {
  if (qualified.startsWith(LIBRARY_PREFIX)) return qualified.slice(LIBRARY_PREFIX.length);
  if (qualified.startsWith(HUB_PREFIX)) return qualified.slice(HUB_PREFIX.length);
  return qualified;
}

/** Parses `NAME[:TAG]`; `what` says where the name came from, for the error. */
export function parseRepoTag(s: string, what: string): RepoTag {
  let parsed;
  try {
    parsed = parseRegistryReference(s);
  } catch {
    throw new InvalidReferenceError(`${what} "${s}" is not a valid image name; write it as NAME[:TAG], e.g. example.com/app:1.0 (lowercase name)`);
  }
  if (parsed.digest !== undefined || s.startsWith("docker://")) {
    throw new InvalidReferenceError(`${what} "${s}" must be NAME[:TAG], without a transport or @digest`);
  }
  const tag = parsed.tag ?? "latest";
  const qualifiedName = `${parsed.registry}/${parsed.repository}`;
  const familiarName = familiarOf(qualifiedName);
  return { full: `${qualifiedName}:${tag}`, familiar: `${familiarName}:${tag}`, familiarName, tag };
}

/**
 * The key two names are compared by when picking an image: `app`, `app:latest`,
 * `docker.io/library/app:latest` and `localhost/app:latest` are one name.
 * A name that does not parse is compared as written.
 */
export function repoTagKey(s: string): string {
  try {
    const familiar = parseRepoTag(s, "the name").familiar;
    return familiar.startsWith(LOCALHOST_PREFIX) ? familiar.slice(LOCALHOST_PREFIX.length) : familiar;
  } catch {
    return s;
  }
}

/**
 * Whether an image known by `repoTags` answers to `wanted`. A bare `:TAG` (a spec's
 * `fromImageTag` without `fromImageName`) matches any name with that tag.
 */
export function matchesRepoTag(repoTags: readonly string[], wanted: string): boolean {
  if (wanted.startsWith(":")) return repoTags.some((t) => repoTagKey(t).endsWith(wanted));
  const key = repoTagKey(wanted);
  return repoTags.some((t) => repoTagKey(t) === key);
}
