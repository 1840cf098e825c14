/**
 * Type rules for the fields of image documents, as the Go structs of the OCI image spec and
 * Docker read them: a document another reader would refuse to decode (a `Cmd` that is a
 * string, a `history` entry that is a list, a `created` that is no RFC 3339 time) is refused
 * here, before it is used or copied. As in Go, a field given as null is as if absent; the
 * items of a list and the values of a map must have their type.
 *
 * A rule returns undefined for a good value, else a complaint: "is a number, not a string"
 * about the value itself, or ".Cmd is …" / "[2] is …" about a part of it, so that nested
 * complaints join into a path ("config.Cmd is a string, not a list of strings").
 */
export type Rule = (value: unknown) => string | undefined;

/** Whether a JSON value is an object (not null, not a list). */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** How a complaint names a value's JSON type. */
export function kindOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "an object";
  if (typeof v === "boolean") return "a boolean";
  return `a ${typeof v}`;
}

function typed(noun: string, test: (v: unknown) => boolean): Rule {
  return (v) => (test(v) ? undefined : `is ${kindOf(v)}, not ${noun}`);
}

/** Go's string: only a JSON string passes (a number is refused, not converted). */
export const string = typed("a string", (v) => typeof v === "string");
/** Go's bool: only true or false pass, not "true" or 0. */
export const boolean = typed("a boolean", (v) => typeof v === "boolean");
/** Go's integer types: a number with no fraction, within ±(2^53 − 1). */
export const integer = typed("an integer", (v) => Number.isSafeInteger(v));

/** RFC 3339, as Go's time.Time reads it: a T, seconds, an optional fraction, Z or an offset. */
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-](\d{2}):(\d{2}))$/;

/** Go's time.Time: a string in RFC 3339 with a zone, naming a real date and time of day (2023-02-30 is refused). */
export const rfc3339: Rule = (v) => {
  if (typeof v !== "string") return `is ${kindOf(v)}, not an RFC 3339 time`;
  const m = RFC3339.exec(v);
  const [year, month, day, hour, minute, second] = (m?.slice(1, 7) ?? []).map(Number) as number[];
  const valid = m !== null && month! >= 1 && month! <= 12 && day! >= 1 && day! <= daysIn(year!, month!)
    && hour! < 24 && minute! < 60 && second! < 60
    && (m[9] === undefined || (Number(m[9]) < 24 && Number(m[10]) < 60));
  return valid ? undefined : `is ${JSON.stringify(v)}, not an RFC 3339 time`;
};

function daysIn(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** A list whose every item passes `item` (null items too are refused). */
export function listOf(item: Rule, noun: string): Rule {
  return (v) => {
    if (!Array.isArray(v)) return `is ${kindOf(v)}, not ${noun}`;
    for (const [i, x] of v.entries()) {
      const why = item(x);
      if (why !== undefined) return `[${i}]${joined(why)}`;
    }
    return undefined;
  };
}

/** An object whose every value passes `value`: Go's map[string]T. */
export function mapOf(value: Rule, noun: string): Rule {
  return (v) => {
    if (!isRecord(v)) return `is ${kindOf(v)}, not ${noun}`;
    for (const [key, x] of Object.entries(v)) {
      const why = value(x);
      if (why !== undefined) return `[${JSON.stringify(key)}]${joined(why)}`;
    }
    return undefined;
  };
}

/** An object whose known fields pass their rules (null is as if absent); other fields are free. */
export function objectWith(fields: Readonly<Record<string, Rule>>): Rule {
  return (v) => {
    if (!isRecord(v)) return `is ${kindOf(v)}, not an object`;
    const why = checkFields(v, fields);
    return why === undefined ? undefined : `.${why}`;
  };
}

/** Go's []string (Env, Cmd, urls): a list of strings, null items refused. */
export const stringList = listOf(string, "a list of strings");
/** Go's map[string]string (Labels, annotations): every value a string. */
export const stringMap = mapOf(string, "an object of strings");
/** Go's map[string]struct{} (ExposedPorts, Volumes): every value an object. */
export const setOfKeys = mapOf(objectWith({}), "an object of objects");

/** The first complaint about `obj`'s known fields, as "FIELD is …" or "FIELD.SUB is …". */
export function checkFields(obj: Record<string, unknown>, fields: Readonly<Record<string, Rule>>): string | undefined {
  for (const [name, rule] of Object.entries(fields)) {
    const v = Object.hasOwn(obj, name) ? obj[name] : undefined;
    if (v === undefined || v === null) continue;
    const why = rule(v);
    if (why !== undefined) return `${name}${joined(why)}`;
  }
  return undefined;
}

/** A complaint appended to a path: " is …" about the value, ".x …" / "[1] …" about a part. */
function joined(why: string): string {
  return why.startsWith(".") || why.startsWith("[") ? why : ` ${why}`;
}
