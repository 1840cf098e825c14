import { appendFile, mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { sha256 } from "../model/digest.js";
import { writeFileAtomically } from "../util/atomic.js";
import { touchUsed } from "./prune.js";

/**
 * A cache record sealed by its own digest: a first line of JSON naming the format and the
 * sha256 of the rest, then the body as JSON. A record that is missing, cut short, damaged or
 * of another format reads as a miss, never as wrong content; a hit is marked used (prune.ts).
 */

/** The body of the sealed record at `path`, with the header's other fields; undefined for a miss. */
export async function readSealed(path: string, format: string): Promise<{ body: unknown; header: Record<string, unknown> } | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch {
    return undefined;
  }
  const newline = bytes.indexOf(0x0a);
  if (newline < 0) return undefined;
  const rest = bytes.subarray(newline + 1);
  try {
    const header = JSON.parse(bytes.subarray(0, newline).toString("utf8")) as Record<string, unknown>;
    if (header.format !== format || header.sha256 !== sha256(rest)) return undefined;
    const body: unknown = JSON.parse(rest.toString("utf8"));
    await touchUsed(path);
    return { body, header };
  } catch {
    return undefined;
  }
}

/** Writes `body` sealed (with `extra` fields in its header) to `path`, atomically. */
export async function writeSealed(path: string, format: string, body: unknown, extra: Record<string, unknown> = {}): Promise<void> {
  const rest = Buffer.from(JSON.stringify(body));
  const header = { ...extra, format, sha256: sha256(rest) };
  await mkdir(dirname(path), { recursive: true });
  // Two writes rather than one concatenated copy: a layer's facts run to tens of megabytes.
  await writeFileAtomically(path, async (temp) => {
    await writeFile(temp, `${JSON.stringify(header)}\n`);
    await appendFile(temp, rest);
  });
}
