import { PassThrough } from "node:stream";
import { InvalidReferenceError } from "../../model/errors.js";
import { writeTarArchive } from "../../archive/archive-tar.js";
import { TarBag } from "../../archive/tar-index.js";
import { parseRepoTag } from "../image-name.js";
import { invalidReference } from "../path-reference.js";
import type { Transport, WriteItem } from "../transport.js";
import { readDockerArchive } from "../docker-archive/read.js";
import { dockerArchiveEntries } from "../docker-archive/write.js";
import { EngineClient } from "./engine.js";

/**
 * `docker-daemon:NAME[:TAG]` (or `docker-daemon:sha256:ID`): an image in a Docker Engine,
 * or podman's Docker-compatible service, reached over its API socket (`$DOCKER_HOST`, else
 * /var/run/docker.sock) with no docker CLI. Reading is `docker save` (GET /images/get),
 * writing `docker load` (POST /images/load) of the archive gantry writes. The engine keeps
 * no manifest of its own: it knows an image by its config digest.
 */
export interface DaemonReference {
  /** NAME:TAG as docker shows it; absent for `--load`, where the images' own names are used. */
  readonly name?: string | undefined;
  /** An image ID (config digest), for reading an untagged image. */
  readonly id?: string | undefined;
}

const ID = /^(?:sha256:)?([0-9a-f]{64})$/;

function engineOf(env: NodeJS.ProcessEnv | undefined): EngineClient {
  return new EngineClient(env ? { env } : {});
}

/** The names the engine tags the image with: the reference's, or the image's own. */
function tagged(ref: DaemonReference, items: readonly WriteItem[]): WriteItem {
  const [item, ...more] = items;
  if (item === undefined || more.length > 0) {
    throw new InvalidReferenceError(`${dockerDaemonTransport.format(ref)} takes one image, but ${items.length} were given; load them one at a time`);
  }
  return ref.name === undefined ? item : { doc: item.doc, repoTags: [ref.name] };
}

/**
 * The `docker-daemon:NAME[:TAG]` transport (see DaemonReference): one image at a time, no indexes.
 * A write is checked first by pinging the engine.
 */
export const dockerDaemonTransport: Transport<DaemonReference> = {
  name: "docker-daemon",
  prefix: "docker-daemon:",
  holdsIndexes: false,
  mutable: (ref) => ref.id === undefined,
  parse(body, spelled) {
    if (body === "") throw invalidReference(spelled, "it names no image; write it as docker-daemon:NAME[:TAG]");
    const id = ID.exec(body);
    if (id) return { id: `sha256:${id[1]!}` };
    return { name: parseRepoTag(body, `the name in the reference "${spelled}"`).familiar };
  },
  format: (ref) => `docker-daemon:${ref.name ?? ref.id ?? "(the image's own names)"}`,
  async read(ref, opts) {
    const wanted = ref.name ?? ref.id;
    if (wanted === undefined) throw invalidReference(dockerDaemonTransport.format(ref), "it names no image to read");
    const engine = engineOf(opts.env);
    const saved = await engine.saveImage([wanted], opts.signal);
    const bag = await TarBag.fromStream(saved, `the image ${wanted} saved by the Docker engine at ${engine.address.display}`, opts.signal);
    return readDockerArchive(bag, { pick: ref.name, firstOfMany: true }, opts.signal);
  },
  async write(ref, items, opts) {
    const item = tagged(ref, items);
    const { entries, digests } = await dockerArchiveEntries([item], opts.signal);
    const engine = engineOf(opts.env);
    const body = new PassThrough();
    let bytes = 0;
    const writing = writeTarArchive(entries, body, { signal: opts.signal, onProgress: opts.onProgress, describe: `the Docker engine at ${engine.address.display}` }).then((n) => { bytes = n; });
    writing.catch((err: unknown) => body.destroy(err as Error));
    await Promise.all([engine.loadImage(body, opts.signal), writing]);
    const doc = item.doc;
    if (doc.kind === "image") {
      opts.onProgress?.({ step: "load", message: `loaded into the Docker engine at ${engine.address.display} as ${item.repoTags.join(", ") || "an untagged image"}; the engine keeps no manifest and knows the image by its config digest ${doc.configDigest}` });
    }
    return { digests, bytes };
  },
  checkWritable: async (_ref, opts) => { await engineOf(opts.env).ping(opts.signal); },
};

/** `--load`: the Docker engine, each image tagged with its own names. */
export const LOAD_INTO_ENGINE: DaemonReference = {};

