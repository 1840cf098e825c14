import type { Digest } from "./digest.js";

/** JSON shapes of the OCI image spec / Docker v2s2, as they appear on disk and on the wire. */

/** The platform an image runs on, with Go's names for `os` and `architecture` (linux, amd64; `variant` v8 for arm64). */
export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  "os.version"?: string;
  "os.features"?: string[];
}

/** A reference to a blob: its media type, digest and size in bytes, as manifests and indexes hold them. */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
  urls?: string[];
}

/** An image manifest: one config blob and its layers, bottom layer first. */
export interface ManifestJson {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

/** An image index (or Docker manifest list): a manifest per platform, or the entries of an OCI layout's index.json. */
export interface IndexJson {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** The runtime part of an image config (`config` key), Docker's capitalised names. */
export interface ContainerConfig {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, object>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  Healthcheck?: {
    Test?: string[];
    Interval?: number;
    Timeout?: number;
    StartPeriod?: number;
    Retries?: number;
  };
  [key: string]: unknown;
}

/** One step of an image config's history; `empty_layer` steps have no entry in `rootfs.diff_ids`. */
export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

/** An image config blob: platform, runtime config, and the diff_ids of the uncompressed layers, bottom first. */
export interface ImageConfigJson {
  architecture: string;
  os: string;
  variant?: string;
  created?: string;
  author?: string;
  config?: ContainerConfig;
  rootfs: { type: "layers"; diff_ids: Digest[] };
  history?: HistoryEntry[];
  [key: string]: unknown;
}

/** One entry of a docker-archive's manifest.json. */
export interface DockerArchiveManifestEntry {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
  LayerSources?: Record<string, Descriptor>;
}
