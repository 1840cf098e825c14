import type { Readable } from "node:stream";
import { EngineError, GantryError, ImageNotFoundError, InvalidReferenceError } from "../../model/errors.js";
import { engineAddress, type EngineAddress } from "./engine-address.js";
import { exchange, readSmallBody, type EngineResponse } from "./engine-exchange.js";
import { JsonMessageSplitter, MessageStreamError, collectLoaded, messageFailure, type LoadedImages } from "./json-messages.js";

/**
 * A client for the three calls of the Docker Engine API that moving images needs: ping,
 * `docker save` (GET /images/get) and `docker load` (POST /images/load). It speaks to dockerd,
 * or to podman's Docker-compatible service, over $DOCKER_HOST with no docker CLI. Image tars
 * stream through in both directions and are never held in memory; every call takes an
 * AbortSignal, and an abort destroys the streams and the connection. Paths carry no /v1.NN
 * prefix, so the engine serves them at its own current API version; what a saved tar looks
 * like inside is the engine's choice (Docker 25+ adds OCI blobs beside manifest.json).
 */
export type { EngineAddress } from "./engine-address.js";
export type { LoadedImages } from "./json-messages.js";

/** Where the engine's address is read from, and how long a ping may wait. */
export interface EngineClientOptions {
  /** Where DOCKER_HOST (and DOCKER_TLS_VERIFY, DOCKER_TLS) are read from; default process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** How long ping() waits for the engine to answer; default 10 s. */
  readonly pingTimeoutMs?: number;
}

/** What the engine says of itself in its answer to a ping. */
export interface EnginePing {
  /** The engine's newest API version, from the Api-Version header ("1.41"), if it sent one. */
  readonly apiVersion: string | undefined;
  /** "linux" or "windows", from the OSType header, if sent. */
  readonly osType: string | undefined;
}

const DEFAULT_PING_TIMEOUT_MS = 10_000;

/**
 * A client of one engine, its address read from DOCKER_HOST when made. Failures are GantryErrors
 * naming the engine: mostly EngineError, ImageNotFoundError for an image it lacks, AbortedError on abort.
 */
export class EngineClient {
  readonly address: EngineAddress;
  private readonly pingTimeoutMs: number;

  /** Throws UNSUPPORTED when DOCKER_HOST names an engine gantry cannot speak to (ssh://, TLS, ...). */
  constructor(options: EngineClientOptions = {}) {
    this.address = engineAddress(options.env ?? process.env);
    this.pingTimeoutMs = options.pingTimeoutMs ?? DEFAULT_PING_TIMEOUT_MS;
  }

  /** GET /_ping: whether an engine answers at the address, before any real work starts. */
  async ping(signal?: AbortSignal): Promise<EnginePing> {
    const action = "answer a ping";
    const response = await exchange(this.address, {
      method: "GET", path: "/_ping", action, signal, answerTimeoutMs: this.pingTimeoutMs,
    });
    if (!isSuccess(response.status)) throw await this.refusal(response, action);
    await readSmallBody(response.body);
    return {
      apiVersion: headerValue(response, "api-version"),
      osType: headerValue(response, "ostype"),
    };
  }

  /**
   * GET /images/get?names=...: the images as one `docker save` tar, streamed. An image the
   * engine does not have is IMAGE_NOT_FOUND. Destroying the returned stream ends the transfer.
   */
  async saveImage(names: readonly string[], signal?: AbortSignal): Promise<Readable> {
    if (names.length === 0) throw new InvalidReferenceError("saving images from the Docker engine needs at least one image name");
    const query = new URLSearchParams(names.map((name): [string, string] => ["names", name]));
    const action = `save ${names.join(", ")}`;
    const response = await exchange(this.address, { method: "GET", path: `/images/get?${query}`, action, signal });
    if (response.status === 404) {
      const said = await engineMessage(response);
      const which = names.length === 1 ? `has no image ${names[0]}` : `lacks at least one of the images ${names.join(", ")}`;
      const advice = names.length === 1 ? "check the name and tag, or load the image first" : "check the names and tags, or load the images first";
      throw new ImageNotFoundError(`the Docker engine at ${this.address.display} ${which}${said ? ` (${said})` : ""}; ${advice}`);
    }
    if (!isSuccess(response.status)) throw await this.refusal(response, action);
    return response.body;
  }

  /**
   * POST /images/load?quiet=1 with `tar` (a docker-archive) streamed as the body. The engine
   * answers 200 before it knows whether loading worked, so its messages are read to the end
   * and an error among them is thrown, naming the engine's message. Returns what was loaded.
   */
  async loadImage(tar: Readable, signal?: AbortSignal): Promise<LoadedImages> {
    const action = "load an image";
    const response = await exchange(this.address, {
      method: "POST",
      path: "/images/load?quiet=1",
      headers: { "content-type": "application/x-tar" },
      body: tar,
      action,
      signal,
    });
    if (!isSuccess(response.status)) throw await this.refusal(response, action);
    return this.readLoadMessages(response.body);
  }

  private async readLoadMessages(body: Readable): Promise<LoadedImages> {
    const loaded: LoadedImages = { names: [], ids: [] };
    const splitter = new JsonMessageSplitter();
    body.setEncoding("utf8");
    try {
      for await (const text of body as AsyncIterable<string>) {
        for (const message of splitter.push(text)) {
          const failure = messageFailure(message);
          if (failure !== undefined) throw new EngineError(`the Docker engine at ${this.address.display} could not load the image: ${oneLine(failure)}`);
          collectLoaded(message, loaded);
        }
      }
      splitter.end();
    } catch (err) {
      body.destroy();
      if (err instanceof MessageStreamError) {
        throw new EngineError(`the Docker engine at ${this.address.display} answered the image load with something other than JSON messages: ${err.message}`, { cause: err });
      }
      throw err;
    }
    return loaded;
  }

  /** An EngineError for a non-success answer, quoting the engine's JSON `message` when it sends one. */
  private async refusal(response: EngineResponse, action: string): Promise<EngineError> {
    const said = await engineMessage(response);
    return new EngineError(
      `the Docker engine at ${this.address.display} failed to ${action} (HTTP ${response.status}${said ? `: ${said}` : ""})`,
      { status: response.status },
    );
  }
}

/** The engine's explanation in an error answer: `{"message": ...}`, else the first line of its text. */
async function engineMessage(response: EngineResponse): Promise<string | undefined> {
  let text: string;
  try {
    text = (await readSmallBody(response.body)).toString("utf8").trim();
  } catch {
    return undefined;
  }
  try {
    const parsed = JSON.parse(text) as { message?: unknown };
    if (typeof parsed.message === "string" && parsed.message !== "") return oneLine(parsed.message);
  } catch {
    /* not JSON: the text itself is the best there is */
  }
  return text === "" ? undefined : oneLine(text);
}

function oneLine(text: string): string {
  const line = text.trim().split("\n")[0]!.trim();
  return line.length > 300 ? `${line.slice(0, 300)}...` : line;
}

function headerValue(response: EngineResponse, name: string): string | undefined {
  const value = response.headers[name];
  return typeof value === "string" && value !== "" ? value : undefined;
}

function isSuccess(status: number): boolean {
  return status >= 200 && status < 300;
}
