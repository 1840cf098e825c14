import { isDigest } from "../model/digest.js";
import { FormatError } from "../model/errors.js";
import type { ImageConfigJson } from "../model/oci.js";

/**
 * Checks an image config's bytes enough for everything downstream to rely on:
 * a JSON object whose `rootfs.diff_ids` are digests, and string platform fields.
 * The bytes themselves are kept as they are, so the config digest never changes.
 */
export function parseImageConfig(bytes: Buffer, what: string): ImageConfigJson {
  const json = parseJson(bytes, what);
  const bad = (why: string): FormatError => new FormatError(`${what} is not a valid image config: ${why}`);
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw bad("it is not a JSON object");
  const config = json as Record<string, unknown>;
  const rootfs = config["rootfs"] as { type?: unknown; diff_ids?: unknown } | undefined;
  if (typeof rootfs !== "object" || rootfs === null || !Array.isArray(rootfs.diff_ids)) throw bad("it has no rootfs.diff_ids list");
  const badId = rootfs.diff_ids.find((d) => !isDigest(d));
  if (badId !== undefined) throw bad(`rootfs.diff_ids holds "${String(badId)}", which is not a sha256 digest`);
  for (const field of ["architecture", "os", "variant", "created"]) {
    if (config[field] !== undefined && typeof config[field] !== "string") throw bad(`"${field}" is not a string`);
  }
  return config as ImageConfigJson;
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Parses JSON bytes; bad JSON is a FormatError naming `what`. */
export function parseJson(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString("utf8"));
  } catch (err) {
    throw new FormatError(`${what} is not valid JSON (${(err as Error).message}); the image is damaged, export it again`, { cause: err });
  }
}
