/**
 * The Docker engine answers long operations (load, pull, build) with 200 and then a stream of
 * JSON objects, one after another: progress, `{"stream": "..."}` lines, and, when the work fails
 * half way, `{"errorDetail": {"message": ...}, "error": ...}`. The HTTP status cannot carry that
 * late failure, so the messages must be read and an error message turned into a thrown error.
 * dockerd ends each object with a newline, but nothing promises it; objects are therefore
 * split by their braces, not by lines.
 */
export interface EngineMessage {
  readonly stream?: unknown;
  readonly error?: unknown;
  readonly errorDetail?: { readonly message?: unknown } | null;
  readonly [key: string]: unknown;
}

/** What a message stream that is not one is reported with; the caller names the engine. */
export class MessageStreamError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MessageStreamError";
  }
}

/** The most a single message may hold before the stream is taken for something else. */
const MAX_MESSAGE_CHARS = 1024 * 1024;

/** Splits text arriving in pieces into whole JSON objects, however the pieces fall. */
export class JsonMessageSplitter {
  private pending = "";
  /** Where scanning resumes in `pending`, and the scanner's state at that point. */
  private scanned = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;

  /** Adds `text` and returns the messages it completes. */
  push(text: string): EngineMessage[] {
    this.pending += text;
    const messages: EngineMessage[] = [];
    let start = 0;
    for (let i = this.scanned; i < this.pending.length; i++) {
      const c = this.pending[i]!;
      if (this.depth === 0) {
        if (c === " " || c === "\n" || c === "\r" || c === "\t") {
          start = i + 1;
          continue;
        }
        if (c !== "{") throw new MessageStreamError(`it sent ${quote(this.pending.slice(i))} where a JSON message should begin`);
        start = i;
        this.depth = 1;
        continue;
      }
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === "\\") this.escaped = true;
        else if (c === "\"") this.inString = false;
        continue;
      }
      if (c === "\"") this.inString = true;
      else if (c === "{" || c === "[") this.depth++;
      else if (c === "}" || c === "]") {
        this.depth--;
        if (this.depth === 0) {
          messages.push(parseMessage(this.pending.slice(start, i + 1)));
          start = i + 1;
        }
      }
    }
    this.pending = this.pending.slice(start);
    this.scanned = this.pending.length;
    if (this.pending.length > MAX_MESSAGE_CHARS) {
      throw new MessageStreamError(`it sent a message longer than ${MAX_MESSAGE_CHARS} characters`);
    }
    return messages;
  }

  /** Checks that the stream did not stop inside a message. */
  end(): void {
    if (this.pending.trim() !== "") throw new MessageStreamError(`its answer stopped inside a message: ${quote(this.pending)}`);
  }
}

function parseMessage(text: string): EngineMessage {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new MessageStreamError(`it sent ${quote(text)}, which is not valid JSON`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new MessageStreamError(`it sent ${quote(text)}, which is not a JSON object`);
  }
  return value as EngineMessage;
}

/** The failure a message reports, if it reports one: the detail's message, else `error`. */
export function messageFailure(message: EngineMessage): string | undefined {
  const detail = message.errorDetail?.message;
  if (typeof detail === "string" && detail !== "") return detail;
  if (typeof message.error === "string" && message.error !== "") return message.error;
  return undefined;
}

/** What an image load reports it loaded: names for tagged images, IDs for untagged ones. */
export interface LoadedImages {
  /** Names the engine gave the loaded images, as it reports them: "app:1", "localhost/app:1". */
  readonly names: string[];
  /** Image IDs of loaded images that have no name: "sha256:...". */
  readonly ids: string[];
}

/**
 * Adds what one message says was loaded to `into`. dockerd reports "Loaded image: NAME" per
 * tag and "Loaded image ID: ID" for an untagged image; podman's compatible service puts all
 * the names of one image on one line, separated by commas (a reference cannot hold a comma).
 */
export function collectLoaded(message: EngineMessage, into: LoadedImages): void {
  if (typeof message.stream !== "string") return;
  for (const line of message.stream.split("\n")) {
    const match = /^Loaded image( ID)?: (.+)$/.exec(line.trim());
    if (!match) continue;
    const list = match[1] ? into.ids : into.names;
    for (const item of match[2]!.split(",")) {
      const name = item.trim();
      if (name !== "" && !list.includes(name)) list.push(name);
    }
  }
}

function quote(text: string): string {
  const shown = text.length > 80 ? `${text.slice(0, 80)}...` : text;
  return JSON.stringify(shown);
}
