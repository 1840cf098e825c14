import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createReadStream } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { newHasher, type Digest } from "../../src/model/digest.js";
import { run } from "./tools.js";

/**
 * Looking inside tars with GNU tar, not with gantry's own reader: what a build
 * writes is judged by a tool that owes gantry nothing.
 */

/** Member names of a tar, in archive order. */
export async function tarMembers(tarPath: string): Promise<string[]> {
  const out = (await run("tar", ["-tf", tarPath])).stdout.toString("utf8");
  return out.split("\n").filter((line) => line !== "");
}

/** The bytes of one member (small members: manifests, configs; or a layer to save). */
export async function tarMember(tarPath: string, member: string): Promise<Buffer> {
  return (await run("tar", ["-xOf", tarPath, member])).stdout;
}

export async function tarMemberJson<T = unknown>(tarPath: string, member: string): Promise<T> {
  return JSON.parse((await tarMember(tarPath, member)).toString("utf8")) as T;
}

/** Copies one member out to `dest` (e.g. a layer blob, to list it as a tar of its own). */
export async function extractMember(tarPath: string, member: string, dest: string): Promise<void> {
  await writeFile(dest, await tarMember(tarPath, member));
}

export interface TarEntry {
  /** "-" file, "d" directory, "l" symlink, "h" hard link, "c"/"b" device, "p" fifo. */
  type: string;
  /** Path without a leading "./" or a trailing "/". */
  path: string;
  /** Permission bits including setuid/setgid/sticky, e.g. 0o755. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch, as GNU tar prints it (UTC). */
  mtime: number;
  linkTarget?: string;
}

const LINE = /^(\S)(\S{9})\s+(\d+)\/(\d+)\s+(\S+)\s+(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:\.\d+)? (.*)$/;

function parseMode(bits: string): number {
  let mode = 0;
  const triplets = [bits.slice(0, 3), bits.slice(3, 6), bits.slice(6, 9)];
  const special = [0o4000, 0o2000, 0o1000];
  triplets.forEach((t, i) => {
    const shift = 6 - 3 * i;
    if (t[0] === "r") mode |= 4 << shift;
    if (t[1] === "w") mode |= 2 << shift;
    const x = t[2];
    if (x === "x" || x === "s" || x === "t") mode |= 1 << shift;
    if (x === "s" || x === "S" || x === "t" || x === "T") mode |= special[i] ?? 0;
  });
  return mode;
}

function cleanPath(p: string): string {
  return p.replace(/^\.\//, "").replace(/\/$/, "");
}

/**
 * Every entry of a tar (plain, gzip or zstd: GNU tar sniffs a file's compression),
 * from `tar --numeric-owner --full-time -tv`, in archive order.
 */
export async function listTar(tarPath: string): Promise<TarEntry[]> {
  const { stdout } = await run("tar", ["--numeric-owner", "--full-time", "-tvf", tarPath], {
    env: { ...process.env, TZ: "UTC", LC_ALL: "C" },
  });
  const entries: TarEntry[] = [];
  for (const line of stdout.toString("utf8").split("\n")) {
    if (line === "") continue;
    const m = LINE.exec(line);
    if (!m) throw new Error(`cannot parse GNU tar listing line: ${line}`);
    const [, type = "", bits = "", uid = "0", gid = "0", size = "0", when = "", rest = ""] = m;
    const entry: TarEntry = {
      type,
      path: rest,
      mode: parseMode(bits),
      uid: Number(uid),
      gid: Number(gid),
      size: /^\d+$/.test(size) ? Number(size) : 0,
      mtime: Date.parse(`${when.replace(" ", "T")}Z`) / 1000,
    };
    const arrow = type === "l" ? " -> " : type === "h" ? " link to " : undefined;
    if (arrow) {
      const at = rest.indexOf(arrow);
      entry.path = rest.slice(0, at);
      entry.linkTarget = rest.slice(at + arrow.length);
    }
    entry.path = cleanPath(entry.path);
    entries.push(entry);
  }
  return entries;
}

/** sha256 of a file, streamed. */
export async function sha256File(path: string): Promise<Digest> {
  const hash = newHasher();
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest("hex")}`;
}

/** The docker-archive view of an output: its single manifest.json entry. */
export interface ArchiveEntry {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}

export async function archiveManifest(tarPath: string): Promise<ArchiveEntry[]> {
  return tarMemberJson<ArchiveEntry[]>(tarPath, "manifest.json");
}

/**
 * The new (top) layer of a docker-archive, listed by GNU tar: extracted to
 * `scratchDir` first because tar cannot sniff compression on a pipe.
 */
export async function listLayer(tarPath: string, layerMember: string, scratchDir: string): Promise<TarEntry[]> {
  const blob = join(scratchDir, `layer-${layerMember.replace(/[^\w.-]/g, "_")}`);
  await extractMember(tarPath, layerMember, blob);
  return listTar(blob);
}

/** A file's content in the archive's last layer, read by GNU tar alone. */
export function fileInTopLayer(archive: string, path: string): string {
  const manifest = JSON.parse(execFileSync("tar", ["-xOf", archive, "manifest.json"], { encoding: "utf8" })) as Array<{ Layers: string[] }>;
  const top = manifest[0]?.Layers.at(-1);
  assert.ok(top !== undefined, "the archive names its layers");
  const blob = execFileSync("tar", ["-xOf", archive, top], { maxBuffer: 1 << 26 });
  return execFileSync("tar", ["-xzO", path], { input: blob, encoding: "utf8" });
}
