import { FormatError } from "../model/errors.js";

/**
 * What JSON.parse lets pass and image readers must not: a key given twice in one object.
 * JavaScript keeps the last value, other parsers the first or refuse the document, so a
 * manifest or config with a key twice reads as two different documents to two tools (a
 * config whose first "Cmd" one registry scanner checks and whose last a runtime runs).
 *
 * `text` is already known to be valid JSON (JSON.parse took it); this walks it once, with
 * a stack of its own (nesting costs memory, never the call stack), comparing keys as they
 * decode (`"a"` and `"\u0061"` are the same key).
 */
export function checkJsonStructure(text: string, what: string): void {
  /** The open objects' keys, or undefined for an open array; and whether a key comes next. */
  const open: (Set<string> | undefined)[] = [];
  let keyNext = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x7b /* { */) {
      open.push(new Set());
      keyNext = true;
    } else if (c === 0x5b /* [ */) {
      open.push(undefined);
      keyNext = false;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      open.pop();
      keyNext = false;
    } else if (c === 0x2c /* , */) {
      keyNext = open[open.length - 1] !== undefined;
    } else if (c === 0x22 /* " */) {
      const end = stringEnd(text, i);
      if (keyNext) {
        const raw = text.slice(i + 1, end);
        const key = raw.includes("\\") ? (JSON.parse(text.slice(i, end + 1)) as string) : raw;
        const keys = open[open.length - 1]!;
        if (keys.has(key)) {
          throw new FormatError(`${what} gives the key ${JSON.stringify(key)} twice in one object; readers disagree on which value counts, so the document is refused`);
        }
        keys.add(key);
        keyNext = false;
      }
      i = end;
    }
  }
}

/** The index of the quote that closes the string opened at `start`. */
function stringEnd(text: string, start: number): number {
  for (let at = text.indexOf('"', start + 1); ; at = text.indexOf('"', at + 1)) {
    let backslashes = 0;
    while (text.charCodeAt(at - 1 - backslashes) === 0x5c /* \ */) backslashes++;
    if (backslashes % 2 === 0) return at;
  }
}
