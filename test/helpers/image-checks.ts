import assert from "node:assert/strict";
import { lstat, readFile, readlink } from "node:fs/promises";
import { join } from "node:path";
import { archiveManifest, listLayer, type TarEntry } from "./archive.js";
import { runGantry } from "./gantry.js";
import { MTIME_EPOCH, payloadFiles } from "./build-case.js";
import type { BaseFixture } from "./bases.js";
import { skopeo, skopeoJson } from "./tools.js";

/**
 * Assertions on a built image, each made with peer tools (skopeo, umoci, GNU tar)
 * so that gantry is judged by what others read, not by its own reader.
 */

export interface ConfigJson {
  architecture: string;
  os: string;
  created?: string;
  config?: { Env?: string[]; Cmd?: string[]; WorkingDir?: string; [k: string]: unknown };
  rootfs: { type: string; diff_ids: string[] };
  history?: { created?: string; empty_layer?: boolean; created_by?: string }[];
}

interface SkopeoInspect { Layers: string[]; RepoTags: string[] }
interface RawManifest { config: { digest: string }; layers: { digest: string }[] }
export interface GantryInspect { ConfigDigest: string; Layers: string[]; LayersData?: { Digest: string; DiffID: string }[]; RepoTags: string[] }

/**
 * skopeo reads `out` both as docker-archive and as oci-archive, and what it sees
 * agrees with `gantry inspect --json`: layer digests (stored), diff_ids, config
 * digest. Returns the config as skopeo decoded it.
 */
export async function assertPeersAgree(out: string): Promise<ConfigJson> {
  const [asDocker, asOci, config, ociConfigBytes, dockerRaw, ociRaw, ours] = await Promise.all([
    skopeoJson<SkopeoInspect>("inspect", `docker-archive:${out}`),
    skopeoJson<SkopeoInspect>("inspect", `oci-archive:${out}`),
    skopeoJson<ConfigJson>("inspect", "--config", `docker-archive:${out}`),
    skopeo("inspect", "--config", `oci-archive:${out}`),
    skopeoJson<RawManifest>("inspect", "--raw", `docker-archive:${out}`),
    skopeoJson<RawManifest>("inspect", "--raw", `oci-archive:${out}`),
    runGantry(["inspect", out, "--json"]),
  ]);
  assert.equal(ours.code, 0, `gantry inspect failed: ${ours.stderr}`);
  const gantry = JSON.parse(ours.stdout.toString("utf8")) as GantryInspect;

  // skopeo names docker-archive layers by diff_id, oci-archive layers by stored digest.
  assert.deepEqual(asDocker.Layers, config.rootfs.diff_ids, "docker-archive layers are the config's diff_ids");
  assert.deepEqual(asOci.Layers, gantry.Layers, "oci-archive layer digests = gantry inspect Layers");
  if (gantry.LayersData) {
    assert.deepEqual(gantry.LayersData.map((l) => l.DiffID), config.rootfs.diff_ids, "gantry inspect DiffIDs = config diff_ids");
  }
  assert.equal(dockerRaw.config.digest, gantry.ConfigDigest, "docker-archive config digest = gantry inspect ConfigDigest");
  assert.equal(ociRaw.config.digest, gantry.ConfigDigest, "oci-archive config digest = gantry inspect ConfigDigest");
  assert.deepEqual(JSON.parse(ociConfigBytes), config, "both views hold the same config");
  assert.equal(config.rootfs.diff_ids.length, asOci.Layers.length);
  return config;
}

/** The base's diff_ids, in order: from skopeo, or (legacy archives) from the fixture. */
export async function baseDiffIds(base: BaseFixture): Promise<string[]> {
  if (base.diffIds) return [...base.diffIds];
  const ref = base.peerRef ?? (base.ref.startsWith("oci:") || base.ref.startsWith("oci-archive:") ? base.ref : `docker-archive:${base.ref}`);
  return (await skopeoJson<ConfigJson>("inspect", "--config", ref)).rootfs.diff_ids;
}

/**
 * The base's layers come first and unchanged, then exactly `added` new ones, and
 * history has one non-empty entry per layer (the base's entries kept in front).
 */
export async function assertLayersOnBase(config: ConfigJson, base: BaseFixture, added = 1): Promise<void> {
  const baseIds = await baseDiffIds(base);
  assert.equal(config.rootfs.diff_ids.length, baseIds.length + added, "base layers + new layers");
  assert.deepEqual(config.rootfs.diff_ids.slice(0, baseIds.length), baseIds, "base diff_ids first, unchanged");
  const history = config.history ?? [];
  assert.equal(history.filter((h) => !h.empty_layer).length, config.rootfs.diff_ids.length,
    "one non-empty history entry per layer");
}

/** Env as a map, failing on a name given twice. */
export function envMap(env: readonly string[] | undefined): Map<string, string> {
  const map = new Map<string, string>();
  for (const entry of env ?? []) {
    const at = entry.indexOf("=");
    const name = at < 0 ? entry : entry.slice(0, at);
    assert.equal(map.has(name), false, `Env names ${name} twice: ${JSON.stringify(env)}`);
    map.set(name, at < 0 ? "" : entry.slice(at + 1));
  }
  return map;
}

/**
 * The payload, as unpacked by umoci: content, mode, owner, mtime, symlink targets.
 * A payload file identical to one of `base` is not stored again, so it keeps the
 * base's mtime.
 */
export async function assertPayloadUnpacked(rootfs: string, base: BaseFixture, opts: { mergedUsr?: boolean } = {}): Promise<void> {
  for (const [rel, want] of Object.entries(payloadFiles(opts))) {
    const fromBase = want.content !== undefined && base.files[`/${rel}`] === want.content;
    const imagePath = opts.mergedUsr && rel.startsWith("lib/") ? `usr/${rel}` : rel;
    const abs = join(rootfs, imagePath);
    const st = await lstat(abs);
    if (want.linkTarget !== undefined) {
      assert.ok(st.isSymbolicLink(), `${imagePath} is a symlink`);
      assert.equal(await readlink(abs), want.linkTarget, `${imagePath} points to ${want.linkTarget}`);
    } else {
      assert.ok(st.isFile(), `${imagePath} is a regular file`);
      assert.equal(await readFile(abs, "utf8"), want.content, `${imagePath} content`);
      assert.equal(st.mode & 0o7777, want.mode, `${imagePath} mode ${(st.mode & 0o7777).toString(8)}`);
      // umoci restores mtimes of files (not of directories it later writes into).
      if (!fromBase) assert.equal(Math.floor(st.mtimeMs / 1000), MTIME_EPOCH, `${imagePath} mtime`);
    }
    assert.equal(st.uid, want.uid, `${imagePath} uid`);
    assert.equal(st.gid, want.gid, `${imagePath} gid`);
  }
}

/** The base's own files and deletions, as unpacked. */
export async function assertBaseUnpacked(rootfs: string, base: BaseFixture, overridden: readonly string[] = []): Promise<void> {
  for (const [path, content] of Object.entries(base.files)) {
    if (overridden.includes(path)) continue;
    assert.equal(await readFile(join(rootfs, path), "utf8"), content, `base file ${path}`);
  }
  for (const gone of base.deleted) {
    await assert.rejects(lstat(join(rootfs, gone)), /ENOENT/, `${gone} was deleted by the base and must stay deleted`);
  }
}

/** GNU tar's listing of the image's top (new) layer. */
export async function newLayerEntries(out: string, scratch: string): Promise<TarEntry[]> {
  const [entry] = await archiveManifest(out);
  assert.ok(entry, "manifest.json has an entry");
  const top = entry.Layers[entry.Layers.length - 1];
  assert.ok(top, "the image has layers");
  return listLayer(out, top, scratch);
}

/**
 * The tar rules of SPEC "Reproducibility" on one layer: each path once, sorted by
 * bytes, parents before children, every time equal to the spec's mtime.
 */
export function assertCanonicalLayer(entries: readonly TarEntry[]): void {
  const paths = entries.map((e) => e.path);
  assert.equal(new Set(paths).size, paths.length, `a path appears twice: ${paths.join(" ")}`);
  const sorted = [...paths].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  assert.deepEqual(paths, sorted, "entries sorted by path");
  const seen = new Set<string>();
  for (const p of paths) {
    const parent = p.includes("/") ? p.slice(0, p.lastIndexOf("/")) : undefined;
    // A parent may be left out when the base already has it; if present, it comes first.
    if (parent !== undefined && paths.includes(parent)) assert.ok(seen.has(parent), `${parent} before ${p}`);
    seen.add(p);
  }
  for (const e of entries) assert.equal(e.mtime, MTIME_EPOCH, `${e.path} mtime`);
}
