/**
 * Shared by the export and runAsRoot tests: the hand-made images of
 * test/fixtures/hostile/make.py (python3 tarfile, no gantry code), and a snapshot of a
 * directory tree that two extractions (ours, umoci's) can be compared by.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/paths.js";
import { requireTools, run } from "../helpers/tools.js";

export const MAKE_PY = join(REPO_ROOT, "test", "fixtures", "hostile", "make.py");

/** The three-layer docker-archive of `make.py layered` (RepoTag gantry-test/layered:1). */
export async function makeLayeredArchive(path: string): Promise<string> {
  requireTools("python3");
  await run("python3", [MAKE_PY, "layered", path]);
  return path;
}

export interface HostileCase { name: string; file: string; entry: string }

/** The hostile corpus of `make.py hostile`, aimed at `sentinel` (an absolute directory). */
export async function makeHostileCorpus(dir: string, sentinel: string): Promise<HostileCase[]> {
  requireTools("python3");
  await run("python3", [MAKE_PY, "hostile", dir, sentinel]);
  return JSON.parse(await readFile(join(dir, "cases.json"), "utf8")) as HostileCase[];
}

/** What an extraction must get right about one path. */
export interface PathFacts {
  /** "-" file, "d" directory, "l" symlink, "c"/"b" device, "p" fifo, "s" socket. */
  type: string;
  /** Permission bits with setuid, setgid and sticky (0 for symlinks: Linux ignores them). */
  mode: number;
  uid: number;
  gid: number;
  /** Regular files: size, link count and sha256 of the bytes. */
  size?: number;
  nlink?: number;
  sha256?: string;
  link?: string;
  /** Devices: major:minor. */
  device?: string;
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Every path below `root` (relative, "/"-separated) with its facts; symlinks are not followed. */
export async function snapshotTree(root: string): Promise<Map<string, PathFacts>> {
  const out = new Map<string, PathFacts>();
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(rel === "" ? root : join(root, rel))).sort();
    for (const name of names) {
      const path = rel === "" ? name : `${rel}/${name}`;
      const host = join(root, path);
      const st = await lstat(host);
      const type = st.isDirectory() ? "d" : st.isSymbolicLink() ? "l" : st.isFile() ? "-"
        : st.isCharacterDevice() ? "c" : st.isBlockDevice() ? "b" : st.isFIFO() ? "p" : "s";
      const facts: PathFacts = { type, mode: type === "l" ? 0 : st.mode & 0o7777, uid: st.uid, gid: st.gid };
      if (type === "-") {
        facts.size = st.size;
        facts.nlink = st.nlink;
        facts.sha256 = await sha256Of(host);
      }
      if (type === "l") facts.link = await readlink(host);
      if (type === "c" || type === "b") facts.device = `${Math.floor(st.rdev / 256)}:${st.rdev % 256}`;
      out.set(path, facts);
      if (type === "d") await walk(path);
    }
  };
  await walk("");
  return out;
}

/** Mtimes (seconds) of every non-directory path, which an extractor sets from the headers. */
export async function mtimesOf(root: string, paths: Iterable<string>): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const path of paths) out.set(path, Math.floor((await lstat(join(root, path))).mtimeMs / 1000));
  return out;
}
