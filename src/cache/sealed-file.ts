import { appendFile, mkdir, open, readFile, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { hasherDigest, newHasher, sha256 } from "../model/digest.js";
import { writeFileAtomically } from "../util/atomic.js";
import { writeTextPieces } from "../util/io.js";
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

/** Records turned into JSON, hashed and written at a time by writeSealedRecords. */
const RECORDS_PER_PIECE = 2000;

/**
 * writeSealed of a body that is an array of many records (`items`, an array or anything read
 * by index, each as `toRecord` makes it), with the same bytes, but made a few thousand
 * records at a time and written as they are made: a layer's facts, 100,000 entries, as one
 * array of records and one JSON text held 50 MB at the end of its build. The header comes
 * first but holds the body's digest, so the body is written after the space the header will
 * take (as long as a placeholder's: every sha256 digest is as long) and the header last; the
 * file is renamed into place only after.
 */
export async function writeSealedRecords<T>(path: string, format: string, items: { readonly length: number; at(index: number): T | undefined }, toRecord: (item: T) => unknown, extra: Record<string, unknown> = {}): Promise<void> {
  const headerLine = (digest: string): string => `${JSON.stringify({ ...extra, format, sha256: digest })}\n`;
  await mkdir(dirname(path), { recursive: true });
  await writeFileAtomically(path, async (temp) => {
    const file = await open(temp, "w");
    try {
      const placeholder = headerLine(sha256("")); // any digest: they are all as long
      const hash = newHasher();
      await writeTextPieces(file.fd, recordPieces(items, toRecord), Buffer.byteLength(placeholder), (bytes) => hash.update(bytes));
      const header = headerLine(hasherDigest(hash));
      if (Buffer.byteLength(header) !== Buffer.byteLength(placeholder)) throw new Error("a sealed record's header changed length");
      await file.write(header, 0);
    } finally {
      await file.close();
    }
  });
}

/** The JSON text of an array of `items` as records, a few thousand at a time. */
function* recordPieces<T>(items: { readonly length: number; at(index: number): T | undefined }, toRecord: (item: T) => unknown): Generator<string> {
  if (items.length === 0) yield "[]";
  for (let start = 0; start < items.length; start += RECORDS_PER_PIECE) {
    const count = Math.min(RECORDS_PER_PIECE, items.length - start);
    const text = JSON.stringify(Array.from({ length: count }, (_, i) => toRecord(items.at(start + i)!)));
    // The piece's records without its brackets, joined to the pieces around them as one JSON text joins them.
    yield `${start === 0 ? "[" : ","}${text.slice(1, -1)}${start + RECORDS_PER_PIECE >= items.length ? "]" : ""}`;
  }
}
