import { dirTransport } from "./dir/transport.js";
import { dockerArchiveTransport } from "./docker-archive/transport.js";
import { dockerDaemonTransport } from "./docker-daemon/transport.js";
import { dockerTransport } from "./docker/transport.js";
import { ociArchiveTransport } from "./oci-archive/transport.js";
import { ociTransport } from "./oci/transport.js";
import type { Transport } from "./transport.js";

/**
 * Every transport gantry speaks, in the order a bare path is offered to them: a layout
 * directory is claimed by its marker file (oci-layout, dir:'s version) before a directory
 * holding a manifest.json is taken for an unpacked docker-archive, and a tar holding only a
 * layout is an oci-archive before any other file is taken for a docker-archive.
 */
export const TRANSPORTS: readonly Transport<unknown>[] = [
  ociTransport, dirTransport, ociArchiveTransport, dockerArchiveTransport, dockerTransport, dockerDaemonTransport,
].map((t) => t as unknown as Transport<unknown>);

/** Standard input and output carry a docker-archive. */
export const STDIO_TRANSPORT = dockerArchiveTransport as Transport<unknown>;
