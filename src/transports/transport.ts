import type { Writable } from "node:stream";
import type { ContentStore } from "../model/content-store.js";
import type { Digest } from "../model/digest.js";
import type { ImageOrIndex, ImageSummary } from "../model/image.js";
import type { ProgressListener } from "../model/progress.js";
import type { BlobLocationBook } from "./docker/blob-locations.js";
import type { WrittenArchives } from "../model/written-archives.js";
import type { ArchiveAssembly } from "../archive/assembly.js";

/**
 * A transport: one kind of place images live (an archive, a layout, a registry, the Docker
 * engine), behind one small interface. Each lives in a folder of its own and is listed once
 * in `list.ts`; nothing else in gantry switches on transport names.
 */

/** What every caller says about reaching places: the network, credentials, the engine. */
export interface AccessOptions {
  signal?: AbortSignal;
  /** `USER:PASS` for registries; otherwise the docker config files are asked. */
  creds?: string;
  /** false: plain HTTP to a registry that is not on loopback. */
  tlsVerify?: boolean;
  /** Where DOCKER_CONFIG, REGISTRY_AUTH_FILE, DOCKER_HOST and HOME are read from; default process.env. */
  env?: NodeJS.ProcessEnv;
  onProgress?: ProgressListener;
  /** Registries: where blobs were seen beyond this process (the cache's book), for mounts. */
  blobLocations?: BlobLocationBook;
}

/** How a transport reads: the access settings, which image of a multi-image source, where blobs are kept. */
export interface ReadOptions extends AccessOptions {
  /** NAME[:TAG] of one image of a multi-image source, when the reference names none. */
  pick?: string;
  /**
   * A source holding several images, with no name given, gives its first (a build's
   * `fromImage`, as nixpkgs reads it) instead of refusing to guess.
   */
  firstOfMany?: boolean;
  /** Where blobs fetched over the network are kept, so they are fetched once. */
  cache?: ContentStore;
}

/** One thing to write, with the names to give it. */
export interface WriteItem {
  readonly doc: ImageOrIndex;
  /** NAME[:TAG] names; a missing tag means `latest`. */
  readonly repoTags: readonly string[];
}

/** How a transport writes: the access settings, where `-` goes, and how registry uploads are made. */
export interface WriteOptions extends AccessOptions {
  /** Where `-` writes; standard output when absent. */
  output?: Writable;
  /** Registry uploads: blobs above this many bytes go in chunks (default 16 MiB). */
  chunkThreshold?: number;
  /** Registry uploads: bytes per chunk (default 16 MiB). */
  chunkSize?: number;
  /** Registry uploads: blobs sent at once (default 3). */
  concurrency?: number;
  /** Registry uploads: gzip uncompressed layers first, as skopeo does (default true). */
  compressLayers?: boolean;
  /** Archive files: what was written to them before (the cache's record), so an unchanged one is left as it is. */
  writtenArchives?: WrittenArchives;
  /** Archive files: the archive as the build put it together, layers packed into it already (archive/assembly.ts). */
  assembly?: ArchiveAssembly | undefined;
}

/** What a transport wrote. */
export interface WriteResult {
  /** The manifest (or index) digest of each item as the destination holds it, in order. */
  digests: Digest[];
  /** Bytes written: the archive's size, or the bytes uploaded. */
  bytes: number;
  /** For a registry: blobs uploaded, found already there, and mounted from a sibling repository. */
  blobs?: { uploaded: number; skipped: number; mounted: number };
}

/**
 * One kind of place images live, its references parsed into `R`. An operation it lacks (read, list,
 * write) is one it cannot do; ImageReference turns that into UnsupportedError.
 */
export interface Transport<R> {
  /** The name before the colon: "docker-archive", "oci", "docker" (spelled `docker://`). */
  readonly name: string;
  /** How references of this transport start: "docker-archive:", "docker://". */
  readonly prefix: string;
  /** Parses what follows the prefix; `spelled` is the whole reference, for messages. */
  parse(body: string, spelled: string): R;
  /** The reference spelled out again. */
  format(ref: R): string;
  /**
   * The body of a reference (what follows the prefix) with a relative path in it made
   * absolute against `dir`, for references written in a spec file. Transports that name no
   * path (a registry, the engine) have none.
   */
  relativeTo?(body: string, dir: string): string;
  /** The image or index `ref` names, as the place holds it. */
  read?(ref: R, opts: ReadOptions): Promise<ImageOrIndex>;
  /** What the place holds: one summary per image (or index) it names. */
  list?(ref: R, opts: ReadOptions): Promise<ImageSummary[]>;
  /** Writes `items` to the place, each under its names; a file or directory written is replaced atomically. */
  write?(ref: R, items: readonly WriteItem[], opts: WriteOptions): Promise<WriteResult>;
  /** Checked before any work: a write to this place can go ahead (its shape, the engine answering). */
  checkWritable?(ref: R, opts: WriteOptions): Promise<void>;
  /** Whether the reference can name other content tomorrow (a tag, not a digest); local files are taken as they are. */
  mutable?(ref: R): boolean;
  /** The registry host the reference is in, for a transport whose places are in registries (blobs there can be mounted). */
  registry?(ref: R): string;
  /** Whether it can hold an image index (a multi-platform image) as an index. */
  readonly holdsIndexes: boolean;
  /**
   * The file a write makes as one image archive, laid out as archive-tar.ts lays archives
   * out, so that a build can pack its layers straight into it (archive/assembly.ts).
   * Undefined for standard output.
   */
  archiveFile?(ref: R): string | undefined;
  /**
   * The reference a bare path is, when this transport claims it by what is there (read) or
   * what can be made there (write). Transports are asked in list order; the first claim wins.
   */
  recognize?(path: string, mode: "read" | "write"): Promise<R | undefined>;
}

/** Just the access settings of a larger options object, for handing on to a transport. */
export function accessOf(opts: AccessOptions): AccessOptions {
  const out: AccessOptions = {};
  if (opts.signal) out.signal = opts.signal;
  if (opts.creds !== undefined) out.creds = opts.creds;
  if (opts.tlsVerify !== undefined) out.tlsVerify = opts.tlsVerify;
  if (opts.env !== undefined) out.env = opts.env;
  if (opts.onProgress) out.onProgress = opts.onProgress;
  if (opts.blobLocations) out.blobLocations = opts.blobLocations;
  return out;
}
