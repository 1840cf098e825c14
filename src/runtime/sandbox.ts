import { lstat, mkdir, readFile, rmdir } from "node:fs/promises";
import { spawn } from "node:child_process";
import { join, resolve, sep } from "node:path";
import { RuntimeError, ioError } from "../model/errors.js";
import { findProgram } from "./find-program.js";
import { isExecutableInRoot } from "./root-path.js";
import { checkScriptResult, type RunResult } from "./process.js";
import { runWithRunc } from "./runc.js";
import { runWithUnshare } from "./unshare.js";

/** The sandboxes runInRoot can use: runc, or util-linux's unshare with chroot. */
export type RuntimeKind = "runc" | "unshare";

/** What a runtime is asked to do: run `script` with `/bin/sh -c` as root in `rootfs`. */
export interface SandboxRequest {
  rootfs: string;
  script: string;
  /** The whole environment, NAME=VALUE. */
  env: string[];
  signal?: AbortSignal;
}

/** What runInRoot runs, where, and in which sandbox. */
export interface RunInRootOptions {
  /** A root file system laid out on disk; the script's changes land in it. */
  rootfs: string;
  /** The shell script, run with the image's `/bin/sh -c`. */
  script: string;
  /** The image config's Env; PATH and HOME are added when missing. */
  env?: readonly string[];
  /** Which sandbox: runc when installed, else unshare + chroot (`GANTRY_RUNTIME` may name one). */
  runtime?: RuntimeKind;
  signal?: AbortSignal;
}

/** What a successful runInRoot reports. */
export interface RunInRootResult {
  /** The sandbox the script ran in. */
  runtime: RuntimeKind;
  /** The last lines the script wrote. */
  output: string[];
}

/**
 * Added to the image's Env when it lacks them. HOME too: runc would otherwise invent one
 * from the image's /etc/passwd, and both sandboxes must give a script the same environment.
 */
const DEFAULT_ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"];

/** Directories the sandbox mounts over; made for the run when the image lacks them, removed after. */
const MOUNT_POINTS = ["proc", "dev", "sys", "tmp"];

/**
 * Runs a runAsRoot script as root inside `rootfs` with the image's own /bin/sh: no
 * network, its own pid, ipc, uts and mount namespaces, a clean environment (the image's
 * Env plus PATH and HOME), and /proc, /dev, /sys and a scratch /tmp mounted for the run only.
 * @throws RuntimeError when not running as root (of the host or of a user namespace), when
 *         no sandbox is installed, or when the script fails (its status and last output, in
 *         one line).
 */
export async function runInRoot(opts: RunInRootOptions): Promise<RunInRootResult> {
  if (process.getuid?.() !== 0) {
    // Builds by an ordinary user get here as root of a user namespace (builder/rootless-stage.ts).
    throw new RuntimeError("the runAsRoot sandbox must be started as root, or as root of a user namespace as gantry build does for an ordinary user");
  }
  const rootfs = resolve(opts.rootfs);
  const env = [...(opts.env ?? [])];
  for (const kv of DEFAULT_ENV) {
    const name = kv.slice(0, kv.indexOf("=") + 1);
    if (!env.some((have) => have.startsWith(name))) env.push(kv);
  }
  const req: SandboxRequest = { rootfs, script: opts.script, env };
  if (opts.signal) req.signal = opts.signal;

  if (!(await isExecutableInRoot(rootfs, "bin/sh"))) {
    throw new RuntimeError("runAsRoot runs the image's own /bin/sh, which the image (base and copyToRoot) does not have; use a base with a shell or add one (e.g. a static busybox) to copyToRoot");
  }
  const run = await pickRuntime(opts.runtime);
  const made = await prepareMountPoints(rootfs);
  let result: RunResult;
  try {
    result = await run.start(req);
  } finally {
    await unmountLeftovers(rootfs);
    for (const dir of made.reverse()) await rmdir(dir).catch(() => undefined);
  }
  checkScriptResult("the runAsRoot script", result);
  return { runtime: run.kind, output: result.tail.tail() };
}

interface Runtime { kind: RuntimeKind; start: (req: SandboxRequest) => Promise<RunResult> }

async function pickRuntime(wanted: RuntimeKind | undefined): Promise<Runtime> {
  const fromEnv = process.env["GANTRY_RUNTIME"];
  const choice = wanted ?? (fromEnv === "runc" || fromEnv === "unshare" ? fromEnv : undefined);
  if (choice !== "unshare") {
    const runc = await findProgram("runc");
    if (runc) return { kind: "runc", start: (req) => runWithRunc(runc, req) };
    if (choice === "runc") throw new RuntimeError("runAsRoot was asked to use runc, which is not installed; install runc (apt-get install runc)");
  }
  const [unshare, chroot] = await Promise.all([findProgram("unshare"), findProgram("chroot")]);
  if (unshare && chroot) return { kind: "unshare", start: (req) => runWithUnshare({ unshare, chroot }, req) };
  throw new RuntimeError("runAsRoot needs a sandbox to run its script and found none: install runc, or util-linux's unshare with coreutils' chroot");
}

/**
 * Makes sure each mount point is a real directory of the root (never a symlink, which a
 * mount would follow out of it); returns those made here, to remove after the run.
 */
async function prepareMountPoints(rootfs: string): Promise<string[]> {
  const made: string[] = [];
  for (const name of MOUNT_POINTS) {
    const dir = join(rootfs, name);
    const st = await lstat(dir).catch(() => undefined);
    if (st?.isDirectory()) continue;
    if (st !== undefined) {
      throw new RuntimeError(`the image's /${name} is not a directory, so the runAsRoot sandbox cannot mount over it; make /${name} a directory in the base image`);
    }
    try {
      await mkdir(dir, 0o755);
    } catch (err) {
      throw ioError(`the mount point ${dir}`, err);
    }
    made.push(dir);
  }
  return made;
}

/** Both sandboxes mount in a namespace of their own; should a mount still show here, detach it. */
async function unmountLeftovers(rootfs: string): Promise<void> {
  const info = await readFile("/proc/self/mountinfo", "utf8").catch(() => "");
  const points = info.split("\n")
    .map((line) => line.split(" ")[4])
    .filter((p): p is string => p !== undefined)
    .map((p) => p.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8))))
    .filter((p) => p.startsWith(rootfs + sep))
    .sort((a, b) => b.length - a.length);
  for (const point of points) {
    await new Promise<void>((done) => {
      spawn("umount", ["-l", point], { stdio: "ignore" }).on("close", () => done()).on("error", () => done());
    });
  }
}
