/**
 * Mutations for the fuzz tests: byte-wise (flips, truncation, inserted and zeroed ranges)
 * and structural (tar entries duplicated, dropped, renamed to hostile names, swapped; JSON
 * values retyped, keys deleted or written twice, sizes and digests lied about). A mutation is
 * plain data drawn by fast-check, so a failing case prints it and replays it from its seed.
 */
import fc from "fast-check";
import { Readable } from "node:stream";
import { extract, pack } from "tar-stream";
import { createHash } from "node:crypto";

export interface TarMember { name: string; type: "file" | "directory" | "symlink"; linkname?: string; data: Buffer }

export async function readTar(bytes: Buffer): Promise<TarMember[]> {
  const members: TarMember[] = [];
  const ex = extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on("entry", (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on("data", (c: unknown) => { chunks.push(c as Buffer); });
      stream.on("end", () => {
        const type = header.type === "directory" ? "directory" : header.type === "symlink" ? "symlink" : "file";
        members.push({ name: header.name, type, ...(header.linkname ? { linkname: header.linkname } : {}), data: Buffer.concat(chunks) });
        next();
      });
      stream.resume();
    });
    ex.on("finish", resolve);
    ex.on("error", reject);
  });
  Readable.from([bytes]).pipe(ex);
  await done;
  return members;
}

export async function writeTar(members: readonly TarMember[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on("data", (c: unknown) => { chunks.push(c as Buffer); });
  const ended = new Promise<void>((resolve) => p.on("end", resolve));
  for (const m of members) {
    if (m.type === "file") p.entry({ name: m.name, size: m.data.length, mode: 0o644 }, m.data);
    else if (m.type === "directory") p.entry({ name: m.name, type: "directory", mode: 0o755 });
    else p.entry({ name: m.name, type: "symlink", linkname: m.linkname ?? "" });
  }
  p.finalize();
  await ended;
  return Buffer.concat(chunks);
}

/** A byte-wise mutation of a whole file. */
export type ByteMutation =
  | { kind: "flip"; at: number; bit: number }
  | { kind: "truncate"; keep: number }
  | { kind: "insert"; at: number; bytes: number[] }
  | { kind: "zero"; at: number; length: number };

/** Positions are fractions of the length, so one mutation fits any seed. */
export const byteMutation: fc.Arbitrary<ByteMutation> = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.double({ min: 0, max: 1, noNaN: true }), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant("truncate" as const), keep: fc.double({ min: 0, max: 1, noNaN: true }) }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.double({ min: 0, max: 1, noNaN: true }), bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 64 }) }),
  fc.record({ kind: fc.constant("zero" as const), at: fc.double({ min: 0, max: 1, noNaN: true }), length: fc.integer({ min: 1, max: 4096 }) }),
);

export function applyBytes(bytes: Buffer, m: ByteMutation): Buffer {
  const at = (f: number): number => Math.min(bytes.length, Math.floor(f * bytes.length));
  const out = Buffer.from(bytes);
  switch (m.kind) {
    case "flip": {
      const i = Math.min(at(m.at), bytes.length - 1);
      if (i >= 0) out[i] = out[i]! ^ (1 << m.bit);
      return out;
    }
    case "truncate": return out.subarray(0, at(m.keep));
    case "insert": return Buffer.concat([out.subarray(0, at(m.at)), Buffer.from(m.bytes), out.subarray(at(m.at))]);
    case "zero": out.fill(0, at(m.at), Math.min(bytes.length, at(m.at) + m.length)); return out;
  }
}

/** A structural mutation of a tar's members; `pick` fractions choose the member(s). */
export type TarMutation =
  | { kind: "duplicate"; pick: number }
  | { kind: "drop"; pick: number }
  | { kind: "rename"; pick: number; to: string }
  | { kind: "swap"; pick: number; other: number }
  | { kind: "bytes"; pick: number; mutation: ByteMutation }
  | { kind: "json"; pick: number; mutation: JsonMutation }
  | { kind: "symlink"; pick: number; target: string }
  | { kind: "consistentLie"; pick: number; bytes: number[] };

const HOSTILE_NAMES = ["../escape", "/absolute", "a/../../b", "./manifest.json", "manifest.json", "index.json", "oci-layout", "repositories", "blobs/sha256/../../x", ""];
const HOSTILE_TARGETS = ["/etc/passwd", "../../../../etc/passwd", ".", "..", "manifest.json", "blobs"];

const fraction = fc.double({ min: 0, max: 1, noNaN: true });

export type JsonMutation =
  | { kind: "retype"; path: number; value: unknown }
  | { kind: "delete"; path: number }
  | { kind: "duplicateKey"; path: number }
  | { kind: "bigNumber"; path: number; value: number }
  | { kind: "raw"; text: string };

const jsonMutation: fc.Arbitrary<JsonMutation> = fc.oneof(
  fc.record({ kind: fc.constant("retype" as const), path: fraction, value: fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant(null), fc.constant([[null]]), fc.constant("x"), fc.constant("sha256:" + "0".repeat(64))) }),
  fc.record({ kind: fc.constant("delete" as const), path: fraction }),
  fc.record({ kind: fc.constant("duplicateKey" as const), path: fraction }),
  fc.record({ kind: fc.constant("bigNumber" as const), path: fraction, value: fc.constantFrom(-1, 2 ** 53, 1e300, 0.5, 2 ** 31) }),
  fc.record({ kind: fc.constant("raw" as const), text: fc.constantFrom("", "{", "[]", "null", "\"x\"", "{\"schemaVersion\":2}", "\uFEFF{}") }),
);

export const tarMutation: fc.Arbitrary<TarMutation> = fc.oneof(
  // The mutation that gets past every digest: drawn as often as all the others together.
  { weight: 7, arbitrary: fc.record({ kind: fc.constant("consistentLie" as const), pick: fraction, bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 0, maxLength: 64 }) }) },
  fc.record({ kind: fc.constant("duplicate" as const), pick: fraction }),
  fc.record({ kind: fc.constant("drop" as const), pick: fraction }),
  fc.record({ kind: fc.constant("rename" as const), pick: fraction, to: fc.constantFrom(...HOSTILE_NAMES) }),
  fc.record({ kind: fc.constant("swap" as const), pick: fraction, other: fraction }),
  fc.record({ kind: fc.constant("bytes" as const), pick: fraction, mutation: byteMutation }),
  fc.record({ kind: fc.constant("json" as const), pick: fraction, mutation: jsonMutation }),
  fc.record({ kind: fc.constant("symlink" as const), pick: fraction, target: fc.constantFrom(...HOSTILE_TARGETS) }),
);

function nth<T>(items: readonly T[], f: number): number {
  return Math.min(items.length - 1, Math.floor(f * items.length));
}

function isJson(data: Buffer): boolean {
  const first = data.subarray(0, 1).toString();
  if (first !== "{" && first !== "[") return false;
  try {
    JSON.parse(data.toString("utf8"));
    return true;
  } catch {
    return false;
  }
}

export function applyTar(members: TarMember[], m: TarMutation): TarMember[] {
  if (members.length === 0) return members;
  const out = members.map((x) => ({ ...x }));
  const files = out.filter((x) => x.type === "file");
  const i = nth(out, m.pick);
  switch (m.kind) {
    case "duplicate": out.splice(i + 1, 0, { ...out[i]!, data: Buffer.from(out[i]!.data.subarray(0, Math.max(0, out[i]!.data.length - 1))) }); return out;
    case "drop": out.splice(i, 1); return out;
    case "rename": out[i] = { ...out[i]!, name: m.to }; return out;
    case "swap": {
      const j = nth(out, m.other);
      const a = out[i]!.data;
      out[i] = { ...out[i]!, data: out[j]!.data };
      out[j] = { ...out[j]!, data: a };
      return out;
    }
    case "bytes": {
      const f = files[nth(files, m.pick)];
      if (f) f.data = applyBytes(f.data, m.mutation);
      return out;
    }
    case "json": {
      const json = files.filter((f) => isJson(f.data));
      const f = json[nth(json, m.pick)];
      if (f) f.data = Buffer.from(mutateJson(f.data.toString("utf8"), m.mutation));
      return out;
    }
    case "symlink": out[i] = { name: out[i]!.name, type: "symlink", linkname: m.target, data: Buffer.alloc(0) }; return out;
    case "consistentLie": {
      // A blob replaced by other bytes, and every name and reference of it (and of what names
      // it in turn) brought in line: an archive whose every digest checks out but whose
      // content is not what it claims (a 33-byte "layer", a config that is not JSON).
      const named = files.filter((f) => HEX.test(f.name));
      const f = named[nth(named, m.pick)];
      if (f) replaceConsistently(out, f, Buffer.from(m.bytes));
      return out;
    }
  }
}

const HEX = /[0-9a-f]{64}/;

function sha256Hex(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Gives `member` new bytes, renaming and rewriting every reference until the archive agrees with itself. */
function replaceConsistently(members: TarMember[], member: TarMember, data: Buffer): void {
  const queue: Array<[string, string]> = [];
  const oldHex = sha256Hex(member.data);
  member.data = data;
  if (member.name.includes(oldHex)) queue.push([oldHex, sha256Hex(data)]);
  for (let guard = 0; queue.length > 0 && guard < 64; guard++) {
    const [from, to] = queue.shift()!;
    for (const m of members) {
      m.name = m.name.split(from).join(to);
      if (m.type === "symlink" && m.linkname) m.linkname = m.linkname.split(from).join(to);
      if (m.type !== "file" || !m.data.includes(from)) continue;
      const before = sha256Hex(m.data);
      m.data = Buffer.from(m.data.toString("latin1").split(from).join(to), "latin1");
      if (m.name.includes(before)) queue.push([before, sha256Hex(m.data)]);
    }
  }
}

/** Every [container, key] in a JSON value, depth first, so a fraction picks one. */
function slots(value: unknown, into: Array<[Record<string, unknown> | unknown[], string | number]> = []): Array<[Record<string, unknown> | unknown[], string | number]> {
  if (Array.isArray(value)) value.forEach((v, i) => { into.push([value, i]); slots(v, into); });
  else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) { into.push([value as Record<string, unknown>, k]); slots(v, into); }
  }
  return into;
}

export function mutateJson(text: string, m: JsonMutation): string {
  if (m.kind === "raw") return m.text;
  const doc = JSON.parse(text) as unknown;
  const all = slots(doc);
  if (all.length === 0) return text;
  const [container, key] = all[nth(all, m.path)]!;
  if (m.kind === "duplicateKey") {
    // Written by hand: JSON.stringify cannot repeat a key, which is the point.
    if (Array.isArray(container)) return text;
    const entries = Object.entries(container);
    const parts = entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`);
    const dup = `${JSON.stringify(key)}:${JSON.stringify("duplicate")}`;
    const replacement = `{${[...parts, dup].join(",")}}`;
    const original = JSON.stringify(container);
    return JSON.stringify(doc).replace(original, replacement);
  }
  if (m.kind === "delete") {
    if (Array.isArray(container)) container.splice(key as number, 1);
    else delete container[key as string];
  } else {
    (container as Record<string | number, unknown>)[key] = m.value;
  }
  return JSON.stringify(doc);
}
