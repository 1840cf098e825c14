import assert from "node:assert/strict";
import { after } from "node:test";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runGantry } from "./gantry.js";
import { startRegistry, type RunningRegistry } from "./registry.js";
import { requireTools, run } from "./tools.js";

/**
 * Fixtures and checks for the tests that show gantry keeps what it reads (the
 * `faithful-*.test.ts` files). Images are made by umoci (`init`, `new`, `insert`, `config`:
 * no unpacking, so no root is needed), indexes and pretty-printed manifests are written
 * here by hand, and every digest a test expects is computed with node:crypto over the bytes
 * a peer (skopeo, the registry) holds, never taken from gantry.
 */

export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
export const REF_NAME = "org.opencontainers.image.ref.name";

export interface Descriptor {
  mediaType?: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string; variant?: string };
  annotations?: Record<string, string>;
}

/** `sha256:HEX` of some bytes, computed here (not by gantry). */
export function digestOf(bytes: Buffer | string): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

export function hexOf(digest: string): string {
  return digest.replace(/^sha256:/, "");
}

/**
 * JSON as nobody's serialiser writes it: three-space indentation and a trailing newline.
 * A document in these bytes keeps its digest only if every writer copies it untouched.
 */
export function prettyJson(value: unknown): Buffer {
  return Buffer.from(`${JSON.stringify(value, null, 3)}\n`);
}

// ---- OCI layouts made with umoci, edited by hand ----

/**
 * A one-layer image in LAYOUT under REF, made by umoci: one file `/which` holding `marker`
 * (so every image has its own layer), then `umoci config` for the platform.
 */
export async function umociImage(layout: string, ref: string, opts: { architecture: string; marker: string }): Promise<Descriptor> {
  requireTools("umoci");
  if (!existsSync(join(layout, "oci-layout"))) await run("umoci", ["init", "--layout", layout]);
  await run("umoci", ["new", "--image", `${layout}:${ref}`]);
  const scratch = await mkdtemp(join(layout, "..", ".marker-"));
  try {
    await writeFile(join(scratch, "which"), `${opts.marker}\n`);
    const rootless = process.getuid?.() === 0 ? [] : ["--rootless"];
    await run("umoci", ["insert", ...rootless, "--image", `${layout}:${ref}`, join(scratch, "which"), "/which"]);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  await run("umoci", [
    "config", "--image", `${layout}:${ref}`, "--os", "linux", "--architecture", opts.architecture,
    "--created", "2000-01-01T00:00:00Z", "--config.label", `marker=${opts.marker}`,
  ]);
  await run("umoci", ["gc", "--layout", layout]);
  return layoutEntry(layout, ref);
}

interface LayoutIndex { schemaVersion: number; mediaType?: string; manifests: Descriptor[] }

async function readLayoutIndex(layout: string): Promise<LayoutIndex> {
  return JSON.parse(await readFile(join(layout, "index.json"), "utf8")) as LayoutIndex;
}

/** The index.json entry of LAYOUT named REF. */
export async function layoutEntry(layout: string, ref: string): Promise<Descriptor> {
  const found = (await readLayoutIndex(layout)).manifests.find((d) => d.annotations?.[REF_NAME] === ref);
  assert.ok(found, `${layout} has no entry ${ref}`);
  return found;
}

export async function layoutRefs(layout: string): Promise<string[]> {
  return (await readLayoutIndex(layout)).manifests.map((d) => d.annotations?.[REF_NAME] ?? "(none)");
}

export function blobFile(layout: string, digest: string): string {
  return join(layout, "blobs", "sha256", hexOf(digest));
}

export async function readBlob(layout: string, digest: string): Promise<Buffer> {
  return readFile(blobFile(layout, digest));
}

/** Stores BYTES as a blob of LAYOUT; returns its digest and size. */
export async function putBlob(layout: string, bytes: Buffer): Promise<{ digest: string; size: number }> {
  const digest = digestOf(bytes);
  await mkdir(join(layout, "blobs", "sha256"), { recursive: true });
  await writeFile(blobFile(layout, digest), bytes);
  return { digest, size: bytes.length };
}

/** Points REF of LAYOUT's index.json at DESC (an entry with that ref is replaced). */
export async function setLayoutRef(layout: string, ref: string, desc: Descriptor): Promise<void> {
  const index = await readLayoutIndex(layout);
  const { annotations: _dropped, platform: _platform, ...plain } = desc;
  index.manifests = [
    ...index.manifests.filter((d) => d.annotations?.[REF_NAME] !== ref),
    { ...plain, annotations: { [REF_NAME]: ref } },
  ];
  await writeFile(join(layout, "index.json"), JSON.stringify(index));
}

/** The bytes of an OCI index over CHILDREN, written by hand (pretty, see prettyJson). */
export function handIndex(children: readonly Descriptor[]): Buffer {
  return prettyJson({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: children.map(({ annotations: _a, ...child }) => ({ mediaType: OCI_MANIFEST, ...child })),
  });
}

/** Writes an index over CHILDREN into LAYOUT as a blob named REF; returns its descriptor. */
export async function addHandIndex(layout: string, ref: string, children: readonly Descriptor[]): Promise<Descriptor & { bytes: Buffer }> {
  const bytes = handIndex(children);
  const desc: Descriptor = { mediaType: OCI_INDEX, ...(await putBlob(layout, bytes)) };
  await setLayoutRef(layout, ref, desc);
  return { ...desc, bytes };
}

/** The image manifest of REF re-written pretty (same content, other bytes), stored under NEWREF. */
export async function addPrettyManifest(layout: string, ref: string, newRef: string): Promise<Descriptor & { bytes: Buffer }> {
  const original = await layoutEntry(layout, ref);
  const bytes = prettyJson(JSON.parse((await readBlob(layout, original.digest)).toString("utf8")));
  const desc: Descriptor = { mediaType: OCI_MANIFEST, ...(await putBlob(layout, bytes)) };
  await setLayoutRef(layout, newRef, desc);
  return { ...desc, bytes };
}

// ---- peers ----

/** `skopeo inspect --raw ARGS`: the manifest bytes as skopeo reads them, unparsed. */
export async function skopeoRaw(...args: string[]): Promise<Buffer> {
  requireTools("skopeo");
  return (await run("skopeo", ["inspect", "--raw", ...args])).stdout;
}

export async function skopeoInspect<T = { Digest: string; Architecture: string; Layers: string[] }>(...args: string[]): Promise<T> {
  requireTools("skopeo");
  return JSON.parse((await run("skopeo", ["inspect", ...args])).stdout.toString("utf8")) as T;
}

export async function skopeoCopy(...args: string[]): Promise<void> {
  requireTools("skopeo");
  await run("skopeo", ["copy", "--quiet", ...args]);
}

// ---- gantry ----

/** Runs gantry and insists it succeeds; returns what it printed on stdout. */
export async function gantryOk(args: string[]): Promise<Buffer> {
  const r = await runGantry(args);
  assert.equal(r.code, 0, `gantry ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout;
}

export interface GantryInspected {
  Digest: string;
  MediaType: string;
  ConfigDigest?: string;
  Architecture?: string;
  Layers?: string[];
  Manifests?: { Digest: string; MediaType: string; Size: number; Platform: string | null }[];
}

/** `gantry --json inspect ARGS`, parsed. */
export async function gantryInspect(...args: string[]): Promise<GantryInspected> {
  return JSON.parse((await gantryOk(["--json", "inspect", ...args])).toString("utf8")) as GantryInspected;
}

/** `gantry inspect ARGS` as a human reads it. */
export async function gantryInspectText(...args: string[]): Promise<string> {
  return (await gantryOk(["inspect", ...args])).toString("utf8");
}

/** The value of the `Digest:` line of `gantry inspect`'s text. */
export function digestLine(text: string): string | undefined {
  return /^Digest:\s+(\S+)$/m.exec(text)?.[1];
}

/** Asserts a failed command: exit 1 and exactly one line, starting `gantry: `, on stderr. */
export function assertOneErrorLine(r: { code: number; stderr: string }, what: string): string {
  assert.equal(r.code, 1, `${what}: exit 1 (stderr: ${r.stderr})`);
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `${what}: one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^gantry: /);
  return lines[0]!;
}

// ---- a registry ----

const MANIFEST_ACCEPT = [
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
].join(", ");

/** The registry's Docker-Content-Digest for REPO:REFERENCE (a HEAD, as any client sends it). */
export async function registryDigest(host: string, repo: string, reference: string): Promise<string> {
  const response = await fetch(`http://${host}/v2/${repo}/manifests/${reference}`, { method: "HEAD", headers: { accept: MANIFEST_ACCEPT } });
  assert.equal(response.status, 200, `HEAD ${repo}:${reference}`);
  const digest = response.headers.get("docker-content-digest");
  assert.ok(digest, `the registry names the digest of ${repo}:${reference}`);
  return digest;
}

/** Stores BYTES in the registry as REPO:TAG under MEDIATYPE (a PUT, as any client sends it); returns the digest it answers. */
export async function putManifest(host: string, repo: string, tag: string, bytes: Buffer, mediaType: string): Promise<string> {
  const response = await fetch(`http://${host}/v2/${repo}/manifests/${tag}`, {
    method: "PUT", headers: { "content-type": mediaType }, body: bytes,
  });
  assert.equal(response.status, 201, `PUT ${repo}:${tag}: ${await response.text()}`);
  const digest = response.headers.get("docker-content-digest");
  assert.ok(digest, "the registry answers with the digest it stored");
  return digest;
}

/**
 * One loopback registry for the tests of a file, started on first use (skipped, through
 * peerTest, when docker-registry is not installed) and stopped after the file's last test.
 * Must be called at module level.
 */
export function sharedRegistry(): () => Promise<RunningRegistry> {
  let started: Promise<RunningRegistry> | undefined;
  after(async () => {
    if (started) await (await started.catch(() => undefined))?.stop();
  });
  return () => {
    requireTools("docker-registry");
    started ??= startRegistry();
    return started;
  };
}
