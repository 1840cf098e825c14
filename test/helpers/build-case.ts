import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { chmod, chown, lchown, mkdir, symlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { runGantry, type GantryOptions } from "./gantry.js";
import { tmpDir } from "./tmp.js";

/**
 * The standard build of the e2e tests: a payload directory laid at / by copyToRoot,
 * on one of the fixture bases, with fixed times, a perms override and an Env that
 * overlaps the base's. The expectations below are what the checks compare with.
 */

export const CREATED = "2024-01-02T03:04:05Z";
export const MTIME = "2023-06-07T08:09:10Z";
export const MTIME_EPOCH = Date.parse(MTIME) / 1000;
export const IMAGE_NAME = "gantry-test/hello";
export const IMAGE_TAG = "1";
/** What the image's Cmd prints: the spec's FOO must win over the base's at run time. */
export const CMD_OUTPUT = "hello from gantry spec\n";

/** A file of the payload, with what the image must show for it. */
export interface PayloadFile {
  content?: string;
  linkTarget?: string;
  /** Mode on disk in the source directory. */
  sourceMode?: number;
  /** Expected in the image. */
  mode: number;
  uid: number;
  gid: number;
}

/**
 * Payload paths (relative to the copyToRoot directory). Owners on disk are
 * deliberately not 0 (1234, see writePayload), and the image must show the spec's
 * owner (0) instead.
 */
export function payloadFiles(opts: { mergedUsr?: boolean } = {}): Record<string, PayloadFile> {
  const files: Record<string, PayloadFile> = {
    "app/hello.txt": { content: "hello\n", sourceMode: 0o644, mode: 0o644, uid: 0, gid: 0 },
    "app/run.sh": { content: "#!/bin/sh\necho run\n", sourceMode: 0o755, mode: 0o755, uid: 0, gid: 0 },
    "app/link": { linkTarget: "hello.txt", mode: 0o777, uid: 0, gid: 0 },
    // perms rule in the spec: 0640, 1000:1000.
    "app/secret.txt": { content: "secret\n", sourceMode: 0o644, mode: 0o640, uid: 1000, gid: 1000 },
    // Byte-identical to the busybox base's file: must not be restated in the new layer.
    "etc/base.txt": { content: "from the base\n", sourceMode: 0o644, mode: 0o644, uid: 0, gid: 0 },
    // The busybox base has another content: must be in the new layer.
    "etc/changed.txt": { content: "ours\n", sourceMode: 0o644, mode: 0o644, uid: 0, gid: 0 },
  };
  if (opts.mergedUsr) {
    // Under the base's /lib -> usr/lib: must land in /usr/lib/x with /lib left a symlink.
    files["lib/x"] = { content: "x\n", sourceMode: 0o644, mode: 0o644, uid: 0, gid: 0 };
  }
  return files;
}

/** Source owner on disk; only root can give files away, so others keep their own. */
const SOURCE_OWNER = 1234;
const canChown = process.getuid?.() === 0;

/**
 * Writes the payload into `root`, owned by 1234:1234 on disk when we are root,
 * directories 0755, in path order or its reverse (so readdir order differs).
 */
export async function writePayload(root: string, files: Record<string, PayloadFile>, order: "forward" | "reverse" = "forward"): Promise<void> {
  const paths = Object.keys(files).sort();
  if (order === "reverse") paths.reverse();
  for (const rel of paths) {
    const f = files[rel];
    if (!f) continue;
    const abs = join(root, rel);
    await mkdir(dirname(abs), { recursive: true });
    if (f.linkTarget !== undefined) {
      await symlink(f.linkTarget, abs);
      if (canChown) await lchown(abs, SOURCE_OWNER, SOURCE_OWNER);
    } else {
      await writeFile(abs, f.content ?? "");
      await chmod(abs, f.sourceMode ?? 0o644);
      if (canChown) await chown(abs, SOURCE_OWNER, SOURCE_OWNER);
    }
  }
  for (const dir of new Set(paths.map((p) => dirname(p)).filter((d) => d !== "."))) {
    await chmod(join(root, dir), 0o755);
    if (canChown) await chown(join(root, dir), SOURCE_OWNER, SOURCE_OWNER);
  }
  await chmod(root, 0o755);
}

export type Spec = Record<string, unknown>;

/** The standard spec; `extra` is merged on top (shallowly). */
export function standardSpec(fromImage: string | undefined, extra: Spec = {}): Spec {
  return {
    name: IMAGE_NAME,
    tag: IMAGE_TAG,
    ...(fromImage !== undefined ? { fromImage } : {}),
    copyToRoot: ["./root"],
    created: CREATED,
    mtime: MTIME,
    perms: [{ path: "/app/secret.txt", mode: "0640", uid: 1000, gid: 1000 }],
    config: {
      Cmd: ["/bin/sh", "-c", "echo hello from gantry $FOO"],
      Env: ["FOO=spec", "NEW=1"],
    },
    ...extra,
  };
}

export interface BuildCase {
  /** Directory holding spec.json and root/. */
  dir: string;
  specPath: string;
  /** The docker-archive written. */
  out: string;
  stderr: string;
}

/** Writes the payload (root/) and `spec` (spec.json) into `dir`; returns the spec's path. */
export async function prepareCase(dir: string, spec: Spec, opts: { mergedUsr?: boolean } = {}): Promise<string> {
  await writePayload(join(dir, "root"), payloadFiles(opts));
  const specPath = join(dir, "spec.json");
  await writeFile(specPath, JSON.stringify(spec, null, 2));
  return specPath;
}

/**
 * Prepares the case in `opts.dir` (default: a fresh temp dir of `t`) and runs
 * `gantry build spec.json -o out.tar`; fails the test with gantry's stderr if the
 * build fails.
 */
export async function buildCase(
  t: TestContext,
  spec: Spec,
  opts: { mergedUsr?: boolean; gantry?: GantryOptions; dir?: string } = {},
): Promise<BuildCase> {
  const dir = opts.dir ?? await tmpDir(t, "gantry-build-");
  const specPath = await prepareCase(dir, spec, opts);
  const out = join(dir, "out.tar");
  const result = await runGantry(["build", specPath, "-o", out], { cwd: dir, ...opts.gantry });
  assert.equal(result.code, 0, `gantry build failed: ${result.stderr}`);
  return { dir, specPath, out, stderr: result.stderr };
}
