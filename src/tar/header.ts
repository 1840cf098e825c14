import { FormatError } from "../model/errors.js";

/**
 * The fields of a tar header block, as both tar readers that do not extract need them:
 * the archive indexer (archive/tar-index.ts) and the layer shape check (shape.ts). ustar names,
 * GNU base-256 numbers and PAX records.
 */

/** Size in bytes of a tar block: headers take one, and every entry's data is padded to a multiple. */
export const BLOCK = 512;
/** PAX and GNU long-name records are metadata; anything bigger is not a sane archive. */
export const MAX_META_BYTES = 1024 * 1024;

/** A text field of `length` bytes at `start`, up to its first NUL (the whole field when it has none), as UTF-8. */
export function cString(buf: Buffer, start: number, length: number): string {
  const field = buf.subarray(start, start + length);
  const nul = field.indexOf(0);
  return field.subarray(0, nul === -1 ? field.length : nul).toString("utf8");
}

/** A numeric header field: octal text, or GNU base-256 when the high bit is set. */
export function numeric(buf: Buffer, start: number, length: number): number | undefined {
  const first = buf[start] ?? 0;
  if (first & 0x80) {
    if (first === 0xff) return undefined; // negative: never a valid size
    let value = first & 0x7f;
    for (let i = start + 1; i < start + length; i++) value = value * 256 + (buf[i] ?? 0);
    return Number.isSafeInteger(value) ? value : undefined;
  }
  const text = buf.subarray(start, start + length).toString("latin1").replace(/[\0 ]+$/, "").replace(/^[ ]+/, "");
  if (text === "") return 0;
  return /^[0-7]+$/.test(text) ? parseInt(text, 8) : undefined;
}

/**
 * Whether a header block's checksum field matches its bytes, summed as unsigned or (as some old
 * tars did) signed bytes, with the field itself counted as spaces. An unreadable field never matches.
 */
export function checksumMatches(header: Buffer): boolean {
  const stored = numeric(header, 148, 8);
  if (stored === undefined) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : header[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

/** Whether every byte is zero: a zero block where a header is due ends the archive. */
export function isZeroBlock(buf: Buffer): boolean {
  for (const b of buf) if (b !== 0) return false;
  return true;
}

/** The entry name: POSIX ustar joins `prefix/name`; the GNU header has no prefix field. */
export function headerName(header: Buffer): string {
  const name = cString(header, 0, 100);
  const isPosixUstar = header.toString("latin1", 257, 263) === "ustar\0";
  const prefix = isPosixUstar ? cString(header, 345, 155) : "";
  return prefix ? `${prefix}/${name}` : name;
}

/** PAX extended header records: `LEN key=value\n`, LEN counting the whole record. */
export function parsePax(data: Buffer, where: string): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    const len = space === -1 ? NaN : Number(data.toString("latin1", pos, space));
    if (!Number.isInteger(len) || len <= 0 || pos + len > data.length) {
      if (data.subarray(pos).every((b) => b === 0)) break;
      throw new FormatError(`${where} has a malformed PAX header; the archive is damaged`);
    }
    const record = data.toString("utf8", space + 1, pos + len - 1);
    const eq = record.indexOf("=");
    if (eq > 0) out.set(record.slice(0, eq), record.slice(eq + 1));
    pos += len;
  }
  return out;
}

