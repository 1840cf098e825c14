import { isDigest } from "../model/digest.js";
import { z } from "zod";
import { isImageName, isTag } from "../transports/docker/reference.js";

/**
 * The build spec's schema. Field names follow nixpkgs `dockerTools.buildImage`.
 * Unknown fields are refused (a typo must not be silently ignored).
 */

const octalMode = z.union([
  z.string().regex(/^0?[0-7]{3,4}$/, "a mode in octal, like \"0755\""),
  z.number().int().min(0).max(0o7777),
]);

const imagePath = z.string().regex(/^\//, "an absolute path in the image, like \"/app\"");

/** The `{ "builtin": NAME }` sources (src/builder/builtins.ts), after dockerTools' helpers of those names. */
export const BUILTIN_NAMES = ["fakeNss", "caCertificates", "binSh", "usrBinEnv", "tmp"] as const;
/** A name `{ "builtin": NAME }` takes: fakeNss, caCertificates, binSh, usrBinEnv or tmp. */
export type BuiltinName = (typeof BUILTIN_NAMES)[number];

const COPY_SOURCE_FORMS = "a directory path, { \"from\": PATH, \"to\": \"/dir\" }, { \"closureOf\": [PROGRAM, ...] } or { \"builtin\": NAME }, one form per entry";

/**
 * One copyToRoot entry. Its forms are told apart by their keys; an entry that mixes
 * them, or is none of them, is refused with the list of forms (spec-load.ts picks the
 * form an entry was meant as for a more precise message when it can).
 */
export const copySourceSchema = z.union([
  z.string().min(1, "a directory path"),
  z.object({ from: z.string().min(1), to: imagePath.default("/") }).strict(),
  z.object({
    closureOf: z.array(z.string().min(1, "a program path"), { invalid_type_error: "a list of program paths, like [\"/usr/bin/node\"]" })
      .min(1, "at least one program path, like [\"/usr/bin/node\"]"),
  }).strict(),
  z.object({ builtin: z.enum(BUILTIN_NAMES) }).strict(),
], { errorMap: () => ({ message: COPY_SOURCE_FORMS }) });

/** A perms rule: a glob of image paths, and the octal mode, uid and gid to give them. */
export const permRuleSchema = z.object({
  path: z.string().min(1),
  mode: octalMode.optional(),
  uid: z.number().int().min(0).optional(),
  gid: z.number().int().min(0).optional(),
}).strict();

const stringMap = z.record(z.string());
const emptyObjectMap = z.record(z.object({}).passthrough());
const stringList = z.array(z.string());

/** The spec's `config`: the runtime fields of an image config, Docker's capitalised names; no other field. */
export const containerConfigSchema = z.object({
  Cmd: stringList.nullable().optional(),
  Entrypoint: stringList.nullable().optional(),
  Env: z.array(z.string().regex(/^[^=]+=/, "NAME=value")).optional(),
  WorkingDir: z.string().optional(),
  User: z.string().optional(),
  ExposedPorts: emptyObjectMap.optional(),
  Volumes: emptyObjectMap.optional(),
  Labels: stringMap.optional(),
  StopSignal: z.string().optional(),
  Healthcheck: z.object({
    Test: stringList.optional(),
    Interval: z.number().int().min(0).optional(),
    Timeout: z.number().int().min(0).optional(),
    StartPeriod: z.number().int().min(0).optional(),
    Retries: z.number().int().min(0).optional(),
  }).strict().optional(),
}).strict();

const timestamp = z.union([
  z.literal("now"),
  z.string().refine((s) => !Number.isNaN(Date.parse(s)), "an ISO-8601 time or \"now\""),
]);

/** The spec's `compressor`. */
export const compressorSchema = z.enum(["gzip", "zstd", "none"]);

const copyToRoot = z.union([copySourceSchema, z.array(copySourceSchema)], { errorMap: () => ({ message: `${COPY_SOURCE_FORMS}, or a list of them` }) });

/** One entry of the spec's `layers`: what one layer holds. */
export const layerSpecSchema = z.object({
  copyToRoot: copyToRoot.optional(),
  perms: z.array(permRuleSchema).optional(),
  runAsRoot: z.string().optional(),
  extraCommands: z.string().optional(),
}).strict();

// Names and tags by docker's reference grammar, the one the registry transport parses with.
const imageName = z.string().refine(isImageName, "an image name: lowercase letters, digits and separators, like \"my-app\" or \"registry:5000/team/app\"");
const imageTag = (what: string) => z.string().refine(isTag, what);

/** A whole build spec; docs/spec.md describes each field and its default. */
export const specSchema = z.object({
  name: imageName,
  tag: imageTag("a tag of letters, digits, '_', '.', '-' (at most 128)").optional(),
  fromImage: z.string().min(1).optional(),
  fromImageName: z.string().min(1).optional(),
  fromImageTag: imageTag("a tag").optional(),
  fromImageDigest: z.string().refine(isDigest, "a digest: sha256: and 64 lowercase hex digits").optional(),
  copyToRoot: copyToRoot.optional(),
  runAsRoot: z.string().optional(),
  extraCommands: z.string().optional(),
  config: containerConfigSchema.optional(),
  architecture: z.string().regex(/^[a-z0-9]+$/, "a Go architecture name like \"amd64\" or \"arm64\"").optional(),
  os: z.string().regex(/^[a-z0-9]+$/, "a Go OS name like \"linux\"").optional(),
  variant: z.string().regex(/^[a-z0-9]+$/, "a variant like \"v8\"").optional(),
  created: timestamp.optional(),
  mtime: z.union([timestamp, z.number().int().min(0)]).optional(),
  uid: z.number().int().min(0).optional(),
  gid: z.number().int().min(0).optional(),
  uname: z.string().max(31).optional(),
  gname: z.string().max(31).optional(),
  perms: z.array(permRuleSchema).optional(),
  compressor: compressorSchema.optional(),
  compressionLevel: z.number().int().optional(),
  layers: z.array(layerSpecSchema).min(1).optional(),
  maxLayers: z.number().int().min(1).max(127).optional(),
  platforms: z.array(z.string().regex(/^[a-z0-9]+\/[a-z0-9_]+(?:\/[a-z0-9]+)?$/, "OS/ARCH[/VARIANT] in Go spelling, like \"linux/arm64\"")).min(1).optional(),
}).strict();

/** A build spec as written (JSON, or a TS/JS module's default export); docs/spec.md lists every field. */
export type ImageSpecInput = z.input<typeof specSchema>;
/** A spec once validated, defaults not yet applied (plan.ts applies them). */
export type ParsedSpec = z.output<typeof specSchema>;
/** One `copyToRoot` entry: a directory, `{ from, to }`, `{ closureOf }` or `{ builtin }`. */
export type CopySourceInput = z.input<typeof copySourceSchema>;
/** One entry of `layers`: its own copyToRoot, runAsRoot and extraCommands. */
export type LayerSpecInput = z.input<typeof layerSpecSchema>;

/** For TypeScript specs: `export default defineImage({...})` gives types and completion. */
export function defineImage(spec: ImageSpecInput): ImageSpecInput {
  return spec;
}

/** For TypeScript specs: `copyToRoot: [closureOf("/usr/bin/node"), "./app"]`, the programs with their loader and libraries. */
export function closureOf(...programs: string[]): { closureOf: string[] } {
  return { closureOf: programs };
}

/** For TypeScript specs, as dockerTools names them: /etc/passwd and /etc/group with root and nobody, and /etc/nsswitch.conf. */
export const fakeNss = { builtin: "fakeNss" } as const satisfies CopySourceInput;
/** The host's CA bundle at /etc/ssl/certs/ca-certificates.crt, linked from the other usual paths. */
export const caCertificates = { builtin: "caCertificates" } as const satisfies CopySourceInput;
/** /bin/sh: the host's shell with its closure. */
export const binSh = { builtin: "binSh" } as const satisfies CopySourceInput;
/** /usr/bin/env with its closure. */
export const usrBinEnv = { builtin: "usrBinEnv" } as const satisfies CopySourceInput;
/** An empty /tmp, mode 1777. */
export const tmp = { builtin: "tmp" } as const satisfies CopySourceInput;
