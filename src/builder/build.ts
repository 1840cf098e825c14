import { WrittenArchivesDir } from "../cache/written-archives.js";
import { rm } from "node:fs/promises";
import { ArchiveAssembly } from "../archive/assembly.js";
import { makeTempDir } from "../util/temp-names.js";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Digest } from "../model/digest.js";
import { digestHex, sha256 } from "../model/digest.js";
import { DigestMismatchError, FormatError, InvalidReferenceError, SpecError, throwIfAborted } from "../model/errors.js";
import type { Image, ImageIndex, ImageOrIndex } from "../model/image.js";
import type { Platform } from "../model/oci.js";
import { formatPlatform, hostPlatform, parsePlatform, platformMatches } from "../model/platform.js";
import type { ProgressListener } from "../model/progress.js";
import { blobLocationsIn } from "../cache/blob-locations.js";
import { SharedCache, cacheRepositories } from "./shared-cache.js";
import { BlobStore } from "../cache/blob-store.js";
import { LayerIndex } from "../cache/layer-index.js";
import { LayerFactsIndex } from "../cache/layer-facts.js";
import { StatIndex } from "../cache/stat-index.js";
import { SourceSnapshots } from "../cache/source-snapshot.js";
import { LookupJournals } from "../cache/lookup-journal.js";
import { defaultCacheDir } from "../cache/location.js";
import { imageFromParts, indexOfDocuments } from "../image/image.js";
import { buildIndex } from "../image/manifest.js";
import { ImageReference, resolveReference } from "../transports/reference.js";
import { accessOf, type AccessOptions } from "../transports/transport.js";
import { LOAD_INTO_ENGINE, dockerDaemonTransport } from "../transports/docker-daemon/transport.js";
import { readSource } from "../ops/source.js";
import { imageForPlatform } from "../image/select.js";
import { checkRunnable } from "../runtime/platform.js";
import { loadSpecFile, specDirOf, validateSpec } from "./spec-load.js";
import type { ImageSpecInput } from "./spec-schema.js";
import { planBuild, type BuildPlan, type ExpandedPlan } from "./plan.js";
import { checkClosureArchitecture, expandSources, type Expanded } from "./expand-sources.js";
import type { ClosureProgram } from "./closure/resolve.js";
import { GeneratedFiles } from "./generated-files.js";
import { configBytes, imageConfig } from "./config.js";
import { buildNewLayers, type LayerContext } from "./build-layers.js";

/**
 * What buildImage builds (a spec), where the image goes, and which caches it uses; the network,
 * credentials and progress come from AccessOptions.
 */
export interface BuildOptions extends AccessOptions {
  /** A spec file (JSON, or a TS/JS module), or a spec object. */
  spec: string | ImageSpecInput;
  /** For a spec object: the directory its relative paths start from (default: the working directory). */
  specDir?: string;
  /** Where to write: a path (docker-archive), any writable reference (`oci:DIR`...), or "-" for stdout. Default `./NAME.tar`. */
  output?: string;
  /** Load the image into the Docker engine (`$DOCKER_HOST`), tagged with its name and every tag; instead of `output`. */
  load?: boolean;
  /** Extra NAME:TAG names for the image, besides the spec's own. */
  tags?: readonly string[];
  /**
   * `os/arch[/variant]`: build this one platform (one of the spec's `platforms`, or in place
   * of its architecture), for a destination that holds a single image.
   */
  platform?: string;
  /** Bypass the cache: new blobs go to a temporary store removed afterwards. */
  noCache?: boolean;
  /** The cache directory (default `$GANTRY_CACHE`, `$XDG_CACHE_HOME/gantry`, `~/.cache/gantry`). */
  cacheDir?: string;
  /**
   * Registry repositories (`docker://HOST/REPO`) to take layers from by their content key
   * (default `$GANTRY_CACHE_FROM`, comma- or space-separated). Reading only: safe for
   * builds of untrusted changes.
   */
  cacheFrom?: readonly string[];
  /** Repositories to record this build's layers in, and read from (default `$GANTRY_CACHE_TO`). */
  cacheTo?: readonly string[];
}

/** One layer of a built image, the base's included: its blob digest, diff_id and size in bytes. */
export interface BuiltLayer {
  digest: Digest;
  diffId: Digest;
  size: number;
  /** A layer of the base image, not made by this build. */
  base: boolean;
  /** A new layer found in the layer index or taken from the registry cache: not walked against the base, packed or compressed. */
  cached: boolean;
}

/** One platform's image of a build. */
export interface BuiltImage {
  /** `os/arch[/variant]`. */
  platform: string;
  manifestDigest: Digest;
  configDigest: Digest;
  layers: BuiltLayer[];
  image: Image;
}

/**
 * What buildImage made and where it went; for a multi-platform build, the first platform's image
 * stands in the single-image fields.
 */
export interface BuildResult {
  /** Where the image went, as a reference. */
  output: string;
  /** The names given: the spec's NAME:TAG (the tag, when the spec has none, from the digest), then `tags`. */
  repoTags: string[];
  /** The image's manifest digest, or the index's for a multi-platform build. */
  manifestDigest: Digest;
  /** The (first) image's config digest. */
  configDigest: Digest;
  /** The (first) image's layers. */
  layers: BuiltLayer[];
  /** The (first) image. */
  image: Image;
  /** A multi-platform build: its index, and one entry per platform. */
  index?: ImageIndex;
  platforms?: BuiltImage[];
}

/** The image name's last path component, for the default output `./NAME.tar`. */
function defaultOutput(name: string): string {
  return `./${name.slice(name.lastIndexOf("/") + 1)}.tar`;
}

async function loadPlan(opts: BuildOptions): Promise<BuildPlan> {
  const env = opts.env ?? process.env;
  if (typeof opts.spec === "string") {
    const spec = validateSpec(await loadSpecFile(opts.spec), `spec ${opts.spec}`);
    return planBuild(spec, specDirOf(opts.spec), env);
  }
  const spec = validateSpec(opts.spec, "spec");
  return planBuild(spec, resolve(opts.specDir ?? "."), env);
}

/**
 * The platforms to build: the spec's list, or the one `--platform` picks from it (or names
 * instead of the spec's architecture); undefined for a single-platform spec with no
 * `--platform`, which builds for the spec's architecture, else the base's, else the host's.
 */
function platformsOf(plan: BuildPlan, wanted: string | undefined): Platform[] | undefined {
  if (wanted === undefined) return plan.platforms;
  const p = parsePlatform(wanted);
  if (!p) throw new InvalidReferenceError(`the platform "${wanted}" is invalid: write it as OS/ARCH[/VARIANT], e.g. linux/arm64`);
  if (plan.platforms && !plan.platforms.some((q) => platformMatches(q, p))) {
    throw new SpecError(`the spec builds ${plan.platforms.map(formatPlatform).join(", ")}, not ${wanted}; pick one of those with --platform`);
  }
  return [plan.platforms?.find((q) => platformMatches(q, p)) ?? p];
}

/** The destination, checked before any work: `--load`, `-o`, or `./NAME.tar`. */
async function outputOf(opts: BuildOptions, plan: BuildPlan, platforms: Platform[] | undefined): Promise<ImageReference> {
  if (opts.load && opts.output !== undefined) throw new SpecError(`give either an output (${opts.output}) or --load, not both`);
  const output = opts.load
    ? new ImageReference(dockerDaemonTransport as never, LOAD_INTO_ENGINE)
    : await resolveReference(opts.output ?? defaultOutput(plan.name), "write");
  if (platforms !== undefined && platforms.length > 1 && !output.holdsIndexes) {
    throw new InvalidReferenceError(`${output} holds one platform's image, and the spec builds ${platforms.length} (${platforms.map(formatPlatform).join(", ")}); pick one with --platform, or write the index to oci:, oci-archive: or docker://`);
  }
  await output.checkWritable(accessOf(opts));
  return output;
}

interface BuildContext extends LayerContext {
  opts: BuildOptions;
  /** The ELF programs of the closures, checked against each image's architecture. */
  programs: ClosureProgram[];
}

/** The plan with its closures and builtins made into host paths (expand-sources.ts), its notes told. */
async function expandPlan(plan: BuildPlan, generatedDir: string, signal: AbortSignal | undefined, progress: ProgressListener): Promise<Expanded> {
  const expandable = plan.layers.some((l) => l.sources.some((s) => !("from" in s)));
  if (expandable) progress({ step: "closure", message: "resolving closureOf and builtin sources" });
  const expanded = await expandSources(plan, { generated: new GeneratedFiles(generatedDir), signal });
  for (const note of expanded.notes) progress({ step: "closure", message: `note: ${note}` });
  return expanded;
}

/**
 * Builds the image a spec describes (one per platform, under an OCI index, for a multi-platform spec)
 * and writes it to the output, or loads it into the engine. Throws SpecError for an invalid spec or
 * conflicting options, InvalidReferenceError for an output that cannot hold the result.
 */
export async function buildImage(opts: BuildOptions): Promise<BuildResult> {
  const { signal } = opts;
  const progress = opts.onProgress ?? (() => {});
  const plan = await loadPlan(opts);
  const platforms = platformsOf(plan, opts.platform);
  const output = await outputOf(opts, plan, platforms);
  // A script must be able to run for every platform built, before any work is done.
  const scripted = plan.layers.some((l) => l.runAsRoot !== undefined);
  for (const p of platforms ?? (plan.architecture !== undefined ? [platformOfPlan(plan)] : [])) if (scripted) await checkRunnable(p, "the runAsRoot script");
  throwIfAborted(signal);

  const env = opts.env ?? process.env;
  const cacheDir = opts.cacheDir ?? defaultCacheDir(opts.env);
  const book = blobLocationsIn(cacheDir);
  // --no-cache bypasses every cache, the registry's too.
  const shared = opts.noCache ? undefined : SharedCache.open({
    from: cacheRepositories(opts.cacheFrom, env, "GANTRY_CACHE_FROM"), to: cacheRepositories(opts.cacheTo, env, "GANTRY_CACHE_TO"),
    output, access: accessOf(opts), book, progress,
  });
  const tempStore = opts.noCache ? await makeTempDir(tmpdir(), "gantry-build-") : undefined;
  // One platform's image going into an archive file: its new layers are packed straight into it.
  const archiveFile = platforms === undefined || platforms.length === 1 ? output.archiveFile : undefined;
  let assembly: ArchiveAssembly | undefined;
  let stat: StatIndex | undefined;
  try {
    if (archiveFile !== undefined) assembly = await ArchiveAssembly.create(archiveFile, opts.noCache === true);
    const expanded = await expandPlan(plan, join(tempStore ?? cacheDir, "generated"), signal, progress);
    const localFacts = opts.noCache ? undefined : new LayerFactsIndex(join(cacheDir, "facts"));
    const ctx: BuildContext = {
      opts, plan: expanded.plan, programs: expanded.programs, signal, progress,
      packed: platforms !== undefined && platforms.length > 1 ? new Map() : undefined,
      store: new BlobStore(tempStore ?? join(cacheDir, "blobs")),
      // --no-cache neither reads nor writes the indexes.
      index: opts.noCache ? undefined : new LayerIndex(join(cacheDir, "layers")),
      facts: localFacts && (shared?.factsOver(localFacts) ?? localFacts),
      stat: opts.noCache ? undefined : new StatIndex(join(cacheDir, "stat")),
      snapshots: opts.noCache ? undefined : new SourceSnapshots(join(cacheDir, "snapshots")),
      journal: opts.noCache ? undefined : new LookupJournals(join(cacheDir, "lookups")),
      shared,
      assembly,
    };
    stat = ctx.stat;
    await ctx.store.sweep();
    // Known platforms are checked before any layer is made; one taken from the base, once the base is read.
    for (const p of platforms ?? []) checkClosureArchitecture(ctx.programs, p.architecture);
    const built: BuiltImage[] = [];
    for (const platform of platforms ?? [undefined]) {
      const what = platform === undefined ? "" : ` for ${formatPlatform(platform)}`;
      if (what) progress({ step: "platform", message: `building${what}` });
      built.push(await buildOne(platform === undefined ? ctx.plan : withPlatform(ctx.plan, platform), ctx));
    }
    await ctx.snapshots?.rememberThreads();
    const first = built[0]!;
    const multi = platforms !== undefined && platforms.length > 1;
    const index = multi ? indexOf(built) : undefined;
    const top: ImageOrIndex = index ?? first.image;
    const tag = plan.tag ?? digestHex(multi ? top.digest : first.configDigest).slice(0, 32);
    const repoTags = [`${plan.name}:${tag}`, ...(opts.tags ?? [])];

    progress({ step: "write", message: `writing ${output}` });
    const written = await output.write([{ doc: top, repoTags }], {
      ...accessOf(opts),
      ...(opts.noCache ? {} : { blobLocations: book, writtenArchives: new WrittenArchivesDir(join(cacheDir, "outputs")) }),
      assembly,
    });
    await shared?.writeRecords();
    const result: BuildResult = {
      output: opts.output ?? (opts.load ? `${dockerDaemonTransport.prefix}${repoTags.join(",")}` : defaultOutput(plan.name)),
      repoTags,
      manifestDigest: written.digests[0] ?? top.digest,
      configDigest: first.configDigest,
      layers: first.layers,
      image: first.image,
    };
    if (index) {
      result.index = index;
      result.platforms = built;
    }
    return result;
  } finally {
    // What was hashed is true of the files whatever became of the build.
    await stat?.save();
    await assembly?.discard();
    if (tempStore) await rm(tempStore, { recursive: true, force: true });
  }
}

function platformOfPlan(plan: BuildPlan): Platform {
  const p: Platform = { os: plan.os ?? "linux", architecture: plan.architecture! };
  if (plan.variant !== undefined) p.variant = plan.variant;
  return p;
}

function withPlatform(plan: ExpandedPlan, p: Platform): ExpandedPlan {
  const out: ExpandedPlan = { ...plan, architecture: p.architecture, os: p.os };
  delete out.variant;
  if (p.variant !== undefined) out.variant = p.variant;
  return out;
}

/** The platform the base is read for: the spec's, when it names one (the host's otherwise). */
function wantedPlatform(plan: BuildPlan): Platform | undefined {
  return plan.architecture === undefined ? undefined : platformOfPlan(plan);
}

/** One platform's image: its base (that platform's), the new layers, the config. */
async function buildOne(plan: ExpandedPlan, ctx: BuildContext): Promise<BuiltImage> {
  const { opts, progress } = ctx;
  let base: Image | undefined;
  if (plan.fromImage !== undefined) {
    progress({ step: "base", message: `reading base ${plan.fromImage}` });
    const from = await resolveReference(plan.fromImage, "read");
    if (from.mutable && plan.fromImageDigest === undefined) {
      progress({ step: "base", message: `warning: the base ${plan.fromImage} is not pinned by digest; the build is only as reproducible as that tag (add @sha256:...)` });
    }
    const want = wantedPlatform(plan);
    const { doc } = await readSource(from, {
      ...accessOf(opts), cache: ctx.store, firstOfMany: true, ...(plan.pick !== undefined ? { pick: plan.pick } : {}),
    });
    base = await imageForPlatform(doc, want ?? hostPlatform(), plan.fromImage, opts.signal);
    if (plan.fromImageDigest !== undefined) checkPinnedBase(plan.fromImageDigest, doc, base, plan.fromImage);
    if (want !== undefined) checkBasePlatform(base, want, plan.fromImage);
  }
  checkClosureArchitecture(ctx.programs, plan.architecture ?? base?.config.architecture ?? hostPlatform().architecture);
  const made = await buildNewLayers(base, { ...ctx, plan });
  const config = imageConfig(base?.config, plan, made.records);
  const bytes = configBytes(config);
  const layers = [...(base?.layers ?? []), ...made.layers];
  const image = imageFromParts({ configBytes: bytes, config, layers }, "the new image config");
  const baseCount = base?.layers.length ?? 0;
  return {
    platform: [config.os, config.architecture, config.variant].filter(Boolean).join("/"),
    manifestDigest: image.digest,
    configDigest: sha256(bytes),
    layers: layers.map((l, i) => ({ digest: l.digest, diffId: l.diffId, size: l.size, base: i < baseCount, cached: made.cached.has(l) })),
    image,
  };
}

/** `fromImageDigest`: the base read must be that document (an index or an image), or the image picked from it. */
function checkPinnedBase(pin: Digest, doc: ImageOrIndex, image: Image, ref: string): void {
  if (pin === doc.digest || pin === image.digest) return;
  const found = doc.digest === image.digest ? image.digest : `${doc.digest} (its image ${image.digest})`;
  throw new DigestMismatchError(`the base ${ref} is ${found}, not ${pin} as "fromImageDigest" pins it; it changed since the spec was written, or the spec names another image`);
}

/**
 * A base whose config says another platform than the one being built would give an image
 * labelled one way holding files of another: refused (an index gives the right image; a
 * single image must be that platform's).
 */
function checkBasePlatform(base: Image, want: Platform, ref: string): void {
  const have: Platform = { os: base.config.os, architecture: base.config.architecture };
  if (base.config.variant !== undefined) have.variant = base.config.variant;
  if (!platformMatches(have, want)) {
    throw new FormatError(`the base ${ref} is an image for ${formatPlatform(have)}, not the ${formatPlatform(want)} being built; give a base with an image for ${formatPlatform(want)} (an index of several platforms, or that platform's image)`);
  }
}

/** An OCI index over the platforms' images, in the spec's order. */
function indexOf(built: readonly BuiltImage[]): ImageIndex {
  const descriptors = built.map(({ image }) => {
    const platform: Platform = { architecture: image.config.architecture, os: image.config.os };
    if (image.config.variant !== undefined) platform.variant = image.config.variant;
    return { mediaType: image.mediaType, digest: image.digest, size: image.manifestBytes.length, platform };
  });
  return indexOfDocuments(buildIndex(descriptors, "oci"), built.map((b) => b.image), []);
}

