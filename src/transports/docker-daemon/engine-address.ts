import { GantryError, UnsupportedError } from "../../model/errors.js";

/**
 * Where the Docker engine listens, read from $DOCKER_HOST the way the docker CLI reads it.
 * gantry speaks plain HTTP over a unix socket or over tcp, nothing else: ssh://, npipe://,
 * fd:// and TLS would each need machinery this client does not have (an ssh child, Windows
 * pipes, client certificates). Those are refused here, before any connection is tried, with
 * a sentence that says so, rather than failing later as an engine that "cannot be reached".
 */
export type EngineAddress =
  | { readonly kind: "unix"; readonly socketPath: string; readonly display: string }
  | { readonly kind: "tcp"; readonly host: string; readonly port: number; readonly display: string };

/** The engine's address when DOCKER_HOST is unset or empty, as for the docker CLI. */
export const DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock";
/** The docker CLI's port for a tcp:// address without one (plain HTTP). */
const DEFAULT_TCP_PORT = 2375;

const SUPPORTED = "use unix:///path/to/docker.sock or tcp://HOST:PORT";

/** The engine's address from `env` (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_TLS); throws UNSUPPORTED for anything gantry cannot speak to. */
export function engineAddress(env: Readonly<Record<string, string | undefined>>): EngineAddress {
  // The docker CLI treats an empty DOCKER_HOST as unset, and any non-empty TLS variable as set.
  const value = env["DOCKER_HOST"] || DEFAULT_DOCKER_HOST;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value)?.[1]?.toLowerCase();
  if (scheme === "unix") return unixAddress(value.slice("unix://".length));
  if (scheme === "tcp") {
    const tlsVariable = ["DOCKER_TLS_VERIFY", "DOCKER_TLS"].find((name) => env[name]);
    if (tlsVariable !== undefined) {
      throw unsupported(`DOCKER_HOST=${value} with ${tlsVariable} set asks for TLS, which gantry does not speak to the Docker engine; use the engine's unix socket, or unset ${tlsVariable} for an engine that serves plain HTTP`);
    }
    return tcpAddress(value);
  }
  if (scheme === "ssh") {
    throw unsupported(`DOCKER_HOST=${value} is not supported: gantry reaches the Docker engine over a unix socket or plain tcp only; forward the remote socket (ssh -L /tmp/docker.sock:/var/run/docker.sock HOST) and set DOCKER_HOST=unix:///tmp/docker.sock`);
  }
  if (scheme !== undefined) {
    throw unsupported(`DOCKER_HOST=${value} is not supported: gantry reaches the Docker engine over a unix socket or plain tcp only; ${SUPPORTED}`);
  }
  throw unsupported(`DOCKER_HOST=${value} is not an engine address gantry understands; ${SUPPORTED}`);
}

function unixAddress(path: string): EngineAddress {
  // As in the docker CLI, "unix://" alone means the default socket.
  const socketPath = path === "" ? DEFAULT_DOCKER_HOST.slice("unix://".length) : path;
  return { kind: "unix", socketPath, display: `unix://${socketPath}` };
}

function tcpAddress(value: string): EngineAddress {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw unsupported(`DOCKER_HOST=${value} is not an engine address gantry understands; ${SUPPORTED}`);
  }
  if (url.username !== "" || url.password !== "") {
    // The value is not repeated: it holds a password.
    throw unsupported(`DOCKER_HOST holds a user name or password, which gantry does not send to the Docker engine; ${SUPPORTED}`);
  }
  if ((url.pathname !== "" && url.pathname !== "/") || url.search !== "" || url.hash !== "") {
    throw unsupported(`DOCKER_HOST=${value} has a path or query after the port, which gantry does not support; ${SUPPORTED}`);
  }
  if (url.hostname === "") {
    throw unsupported(`DOCKER_HOST=${value} names no host; ${SUPPORTED}`);
  }
  const port = url.port === "" ? DEFAULT_TCP_PORT : Number(url.port);
  // URL keeps the brackets of an IPv6 literal; node:http wants the bare address.
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const shown = host.includes(":") ? `[${host}]` : host;
  return { kind: "tcp", host, port, display: `tcp://${shown}:${port}` };
}

function unsupported(message: string): GantryError {
  return new UnsupportedError(message);
}
