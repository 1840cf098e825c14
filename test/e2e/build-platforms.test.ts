/**
 * SPEC "The build spec", `platforms` and `architecture`, through the command line. With
 * `"platforms": ["linux/amd64", "linux/arm64"]` and a two-platform index as `fromImage`, a
 * build writes an OCI index over one image per platform: oci-image-tool validates it, skopeo
 * reads each platform with --override-arch, each image is its own base's layers plus one new
 * layer whose digest is the same for both (one blob), `gantry inspect` lists both platforms,
 * and `gantry export --platform`/`diff --platform` find each base's own /etc/arch. Pushed to a
 * loopback registry the index has the same digest as in the layout, and skopeo pulls both
 * platforms. A docker-archive holds one image: refused before any work unless --platform picks
 * one. `"architecture": "arm64"` reads the arm64 image of an index, and refuses an amd64-only
 * base. runAsRoot for a platform with no binfmt_misc handler fails before any work.
 *
 * Fixtures, made at test time in a temp dir: an OCI layout holding two one-layer images made by
 * umoci (`new`, `unpack`, a file /etc/arch holding "amd64" or "arm64", `repack`, `config
 * --architecture`), an indented OCI index over both written by hand (refs "amd64", "arm64",
 * "multi"), the same layout tarred as an oci-archive, and a small source tree for copyToRoot.
 * Every digest a test expects comes from umoci's layout or from what skopeo reads, never from
 * gantry.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runGantry } from "../helpers/gantry.js";
import {
  addHandIndex, assertOneErrorLine, digestOf, gantryInspect, gantryInspectText, gantryOk, hexOf, layoutEntry,
  registryDigest, sharedRegistry, skopeoCopy, skopeoInspect, skopeoRaw, type Descriptor,
} from "../helpers/faithful.js";
import { fileTmpDir, tmpDir } from "../helpers/tmp.js";
import { peerTest, requireTools, run } from "../helpers/tools.js";

const registry = sharedRegistry();
const shared = fileTmpDir("gantry-build-platforms-");

const ARCHES = ["amd64", "arm64"] as const;
type Arch = (typeof ARCHES)[number];
const PLATFORMS = ARCHES.map((a) => `linux/${a}`);

// ---- the bases ----

interface Bases {
  layout: string;
  /** The layout tarred: an oci-archive with the same refs. */
  archive: string;
}

/**
 * A one-layer image in LAYOUT under ref ARCH, made by umoci: /etc/arch holds ARCH, the config
 * says linux/ARCH. Unpack and repack, not `umoci insert` (faithful.ts's umociImage): umoci
 * 0.4.7's insert leaves the layer's tar unterminated, and these layers are read.
 */
async function umociArchImage(layout: string, arch: Arch): Promise<Descriptor> {
  const image = `${layout}:${arch}`;
  await run("umoci", ["new", "--image", image]);
  const bundle = join(await mkdtemp(join(layout, "..", ".bundle-")), "b");
  try {
    const rootless = process.getuid?.() === 0 ? [] : ["--rootless"];
    await run("umoci", ["unpack", ...rootless, "--image", image, bundle]);
    await mkdir(join(bundle, "rootfs", "etc"), { recursive: true });
    await writeFile(join(bundle, "rootfs", "etc", "arch"), `${arch}\n`);
    await run("umoci", ["repack", "--image", image, bundle]);
  } finally {
    await rm(join(bundle, ".."), { recursive: true, force: true });
  }
  await run("umoci", ["config", "--image", image, "--os", "linux", "--architecture", arch, "--created", "2000-01-01T00:00:00Z"]);
  return layoutEntry(layout, arch);
}

async function makeBases(): Promise<Bases> {
  const dir = await shared();
  const layout = join(dir, "bases");
  await run("umoci", ["init", "--layout", layout]);
  const children: Descriptor[] = [];
  for (const arch of ARCHES) children.push({ ...(await umociArchImage(layout, arch)), platform: { os: "linux", architecture: arch } });
  await run("umoci", ["gc", "--layout", layout]);
  await addHandIndex(layout, "multi", children);
  const archive = join(dir, "bases.tar");
  await run("tar", ["-C", layout, "-cf", archive, "."]);
  return { layout, archive };
}

let bases: Promise<Bases> | undefined;
function platformBases(): Promise<Bases> {
  requireTools("umoci", "skopeo", "tar");
  return (bases ??= makeBases());
}

/** The base image of ARCH as skopeo reads it: its layer digests (as stored) and diff_ids. */
async function baseLayers(arch: Arch): Promise<{ digests: string[]; diffIds: string[] }> {
  const ref = `oci:${(await platformBases()).layout}:${arch}`;
  const { Layers } = await skopeoInspect(ref);
  const config = await skopeoInspect<{ rootfs: { diff_ids: string[] } }>("--config", ref);
  return { digests: Layers, diffIds: config.rootfs.diff_ids };
}

// ---- specs and builds ----

/** Writes the copyToRoot tree and spec.json (FIELDS over a fixed name, tag, time and sources) into DIR; returns the spec's path. */
async function writeSpec(dir: string, fields: Record<string, unknown>): Promise<string> {
  await mkdir(join(dir, "root", "app", "bin"), { recursive: true });
  await writeFile(join(dir, "root", "app", "hello.txt"), "hello from every platform\n");
  await writeFile(join(dir, "root", "app", "bin", "run"), "#!/bin/sh\necho run\n", { mode: 0o755 });
  const spec = join(dir, "spec.json");
  await writeFile(spec, JSON.stringify({ name: "multi", tag: "1", created: "2024-01-02T03:04:05Z", copyToRoot: "./root", ...fields }));
  return spec;
}

/** The spec of the multi-platform build: both platforms on the index. */
async function multiSpec(dir: string): Promise<string> {
  return writeSpec(dir, { fromImage: `oci:${(await platformBases()).layout}:multi`, platforms: PLATFORMS });
}

/** `gantry build SPEC -o OUT ARGS...` with a cache of its own (so no build leans on another's); insists it succeeds. */
async function build(spec: string, out: string, ...args: string[]): Promise<void> {
  const cache = await mkdtemp(join(await shared(), "cache-"));
  const r = await runGantry(["build", spec, "-o", out, ...args], { env: { GANTRY_CACHE: cache } });
  assert.equal(r.code, 0, `gantry build -o ${out} failed: ${r.stderr}`);
}

interface IndexJson { mediaType: string; manifests: Descriptor[] }

interface BuiltIndex {
  layout: string;
  ref: string;
  /** The index's bytes as skopeo reads them. */
  raw: Buffer;
  children: Record<Arch, Descriptor>;
}

/** The multi-platform build into an OCI layout, made once for the file. */
let built: Promise<BuiltIndex> | undefined;
function builtIndex(): Promise<BuiltIndex> {
  built ??= (async () => {
    const dir = join(await shared(), "multi");
    await mkdir(dir);
    const layout = join(dir, "out");
    const ref = `oci:${layout}:ref`;
    await build(await multiSpec(dir), ref);
    const raw = await skopeoRaw(ref);
    const manifests = (JSON.parse(raw.toString("utf8")) as IndexJson).manifests;
    const childOf = (a: Arch): Descriptor => {
      const found = manifests.filter((m) => m.platform?.os === "linux" && m.platform.architecture === a);
      assert.equal(found.length, 1, `the index has one linux/${a} image: ${raw.toString("utf8")}`);
      return found[0]!;
    };
    return { layout, ref, raw, children: { amd64: childOf("amd64"), arm64: childOf("arm64") } };
  })();
  return built;
}

// ---- reading results ----

/** skopeo's view of REF's image for ARCH (--override-arch). */
async function skopeoImageFor(ref: string, arch: Arch): Promise<{ Architecture: string; Layers: string[] }> {
  return skopeoInspect("--override-arch", arch, "--override-os", "linux", ref);
}

/** The content of /etc/arch in what `gantry export ARGS` writes to a fresh directory. */
async function exportedArch(work: string, ...args: string[]): Promise<string> {
  const dir = await mkdtemp(join(work, "export-"));
  await rm(dir, { recursive: true });
  await gantryOk(["export", ...args, "-o", dir]);
  return readFile(join(dir, "etc", "arch"), "utf8");
}

/** The blobs a layout's index reaches: the index, each manifest, its config and layers. */
async function reachableBlobs(layout: string, raw: Buffer): Promise<string[]> {
  const blobs = new Set([hexOf(digestOf(raw))]);
  for (const child of (JSON.parse(raw.toString("utf8")) as IndexJson).manifests) {
    blobs.add(hexOf(child.digest));
    const manifest = JSON.parse(await readFile(join(layout, "blobs", "sha256", hexOf(child.digest)), "utf8")) as { config: Descriptor; layers: Descriptor[] };
    for (const d of [manifest.config, ...manifest.layers]) blobs.add(hexOf(d.digest));
  }
  return [...blobs].sort();
}

/** Whether this machine runs ARCH's programs: natively, or through a binfmt_misc handler (qemu-user names them by qemu's spelling). */
async function hostRuns(arch: Arch): Promise<boolean> {
  const native = { x64: "amd64", arm64: "arm64" }[process.arch as string];
  if (native === arch) return true;
  const qemu = { amd64: "x86_64", arm64: "aarch64" }[arch];
  const dir = "/proc/sys/fs/binfmt_misc";
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (name === "register" || name === "status") continue;
    const entry = await readFile(join(dir, name), "utf8").catch(() => "");
    if (entry.startsWith("enabled") && (name.includes(qemu) || entry.includes(`qemu-${qemu}`))) return true;
  }
  return false;
}

// ---- the tests ----

peerTest("platforms: the index written to oci: validates, and skopeo reads each platform on its own base plus one shared new layer", async () => {
  requireTools("oci-image-tool");
  const { layout, ref, raw, children } = await builtIndex();
  assert.equal((JSON.parse(raw.toString("utf8")) as IndexJson).mediaType, "application/vnd.oci.image.index.v1+json");
  await run("oci-image-tool", ["validate", "--type", "image", "--ref", "name=ref", layout]);
  await run("oci-image-tool", ["validate", "--type", "imageIndex", join(layout, "blobs", "sha256", hexOf(digestOf(raw)))]);

  const newLayers: string[] = [];
  for (const arch of ARCHES) {
    // oci-image-tool skips an index's children: each manifest is validated on its own.
    await run("oci-image-tool", ["validate", "--type", "manifest", join(layout, "blobs", "sha256", hexOf(children[arch].digest))]);
    const image = await skopeoImageFor(ref, arch);
    assert.equal(image.Architecture, arch, `skopeo reads the ${arch} image`);
    const base = await baseLayers(arch);
    assert.equal(image.Layers.length, base.digests.length + 1, `the ${arch} image is its base's layers plus one`);
    assert.deepEqual(image.Layers.slice(0, -1), base.digests, `the ${arch} image starts with the ${arch} base's layers, in order`);
    newLayers.push(image.Layers.at(-1)!);
  }
  assert.equal(newLayers[0], newLayers[1], "the new layer is the same blob for both platforms");

  const files = (await readdir(join(layout, "blobs", "sha256"))).sort();
  assert.deepEqual(files, await reachableBlobs(layout, raw), "the layout holds each blob once and nothing else");
  assert.equal(files.length, 1 + 2 * 2 + 2 + 1, "index, two manifests, two configs, two base layers, one new layer");
});

peerTest("platforms: gantry inspect lists both platforms (text and --json); export and diff --platform find each base's /etc/arch", async (t) => {
  const { ref, raw, children } = await builtIndex();
  const { layout: baseLayout } = await platformBases();
  const text = await gantryInspectText(ref);
  assert.match(text, new RegExp(`^Digest:\\s+${digestOf(raw)}$`, "m"));
  for (const arch of ARCHES) assert.match(text, new RegExp(`^\\s+linux/${arch}\\s+${children[arch].digest}\\s`, "m"));
  const json = await gantryInspect(ref);
  assert.equal(json.Digest, digestOf(raw));
  assert.deepEqual(json.Manifests?.map((m) => [m.Platform, m.Digest]), ARCHES.map((a) => [`linux/${a}`, children[a].digest]));

  const work = await tmpDir(t);
  for (const arch of ARCHES) {
    assert.equal(await exportedArch(work, "--platform", `linux/${arch}`, ref), `${arch}\n`, `the ${arch} image holds the ${arch} base's /etc/arch`);
    const diff = JSON.parse((await gantryOk(["--json", "diff", "--platform", `linux/${arch}`, `oci:${baseLayout}:multi`, ref])).toString("utf8")) as Record<string, string[]>;
    assert.deepEqual(diff, { added: ["app", "app/bin", "app/bin/run", "app/hello.txt"], removed: [], changed: [] }, `the ${arch} image is its base and the sources`);
  }
});

peerTest("platforms: pushed to a registry, the index has the oci: layout's digest and both platforms pull", async (t) => {
  const { raw: written, children } = await builtIndex();
  const { host } = await registry();
  const target = `docker://${host}/multi:1`;
  const work = await tmpDir(t);
  await build(await multiSpec(join(work, "build")), target);
  const raw = await skopeoRaw("--tls-verify=false", target);
  assert.equal(digestOf(raw), digestOf(written), "the same inputs give the same index bytes, in a layout or a registry");
  assert.equal(await registryDigest(host, "multi", "1"), digestOf(written), "the registry's Docker-Content-Digest");
  for (const arch of ARCHES) {
    const pulled = `oci:${join(work, `pulled-${arch}`)}:x`;
    await skopeoCopy("--src-tls-verify=false", "--override-arch", arch, "--override-os", "linux", target, pulled);
    assert.equal(digestOf(await skopeoRaw(pulled)), children[arch].digest, `skopeo pulls the ${arch} image of the index, blobs and all`);
    assert.equal((await skopeoInspect<{ Architecture: string }>(pulled)).Architecture, arch);
  }
});

peerTest("platforms: a docker-archive is refused before any work unless --platform picks one; then it holds the arm64 image", async (t) => {
  const { archive } = await platformBases();
  const work = await tmpDir(t);
  const spec = await writeSpec(work, { fromImage: `oci-archive:${archive}:multi`, platforms: PLATFORMS });
  const outDir = join(work, "out");
  await mkdir(outDir);
  const out = join(outDir, "out.tar");
  const cache = join(work, "cache");

  const refused = await runGantry(["build", spec, "-o", out], { env: { GANTRY_CACHE: cache } });
  const line = assertOneErrorLine(refused, "a two-platform build to a docker-archive");
  for (const expected of [...PLATFORMS, "--platform"]) assert.ok(line.includes(expected), `the error names ${expected}: ${line}`);
  assert.deepEqual(await readdir(outDir), [], "nothing is written beside out.tar");
  assert.ok(!existsSync(cache), "no work began: the cache was not made");

  await build(spec, out, "--platform", "linux/arm64");
  const config = await skopeoInspect<{ architecture: string; rootfs: { diff_ids: string[] } }>("--config", `docker-archive:${out}`);
  assert.equal(config.architecture, "arm64");
  const base = await baseLayers("arm64");
  assert.deepEqual(config.rootfs.diff_ids.slice(0, -1), base.diffIds, "the arm64 base's layers, then one new layer");
  assert.equal(await exportedArch(work, out), "arm64\n");
});

peerTest("architecture: arm64 refuses an amd64-only base, naming both platforms, and builds the arm64 image of an index", async (t) => {
  const { layout } = await platformBases();
  const work = await tmpDir(t);
  const out = join(work, "out.tar");

  const wrong = await writeSpec(join(work, "wrong"), { fromImage: `oci:${layout}:amd64`, architecture: "arm64" });
  const refused = await runGantry(["--quiet", "build", wrong, "-o", out]);
  const line = assertOneErrorLine(refused, "an arm64 build on an amd64 image");
  for (const expected of PLATFORMS) assert.ok(line.includes(expected), `the error names ${expected}: ${line}`);
  assert.ok(!existsSync(out), "no archive is written");

  const right = await writeSpec(join(work, "right"), { fromImage: `oci:${layout}:multi`, architecture: "arm64" });
  await build(right, out);
  const config = await skopeoInspect<{ architecture: string; rootfs: { diff_ids: string[] } }>("--config", `docker-archive:${out}`);
  assert.equal(config.architecture, "arm64", "the spec's architecture, not the host's");
  assert.deepEqual(config.rootfs.diff_ids.slice(0, -1), (await baseLayers("arm64")).diffIds, "on the index's arm64 image");
  assert.equal(await exportedArch(work, out), "arm64\n");
});

peerTest("runAsRoot for a platform this machine cannot run fails before any work, in one line", async (t) => {
  const foreign: Arch = process.arch === "arm64" ? "amd64" : "arm64";
  if (await hostRuns(foreign)) {
    t.skip(`this machine runs ${foreign} programs (a binfmt_misc handler), so nothing is refused`);
    return;
  }
  const { layout } = await platformBases();
  const work = await tmpDir(t);
  const spec = await writeSpec(work, { fromImage: `oci:${layout}:multi`, platforms: PLATFORMS, runAsRoot: "touch /ran" });
  const out = join(work, "out");
  const cache = join(work, "cache");
  const r = await runGantry(["build", spec, "-o", `oci:${out}:ref`], { env: { GANTRY_CACHE: cache } });
  const line = assertOneErrorLine(r, `runAsRoot for linux/${foreign}`);
  assert.ok(line.includes(`linux/${foreign}`), `the error names linux/${foreign}: ${line}`);
  assert.match(line, /runAsRoot/);
  assert.match(line, /binfmt/);
  assert.ok(!existsSync(out), "no layout is written");
  assert.ok(!existsSync(cache), "no work began: the cache was not made");
});
