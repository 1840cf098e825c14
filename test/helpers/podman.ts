import { after } from "node:test";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, mkdir, stat, writeFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { removeDir } from "./tmp.js";
import { requireRoot, requireTools, run, type RunOptions, type RunResult } from "./tools.js";

/**
 * podman with all its state in a temp dir. On this kind of machine podman works
 * only with runc, cgroupfs, file events and lowered ulimits, and without a network
 * namespace of its own; those settings go in a private CONTAINERS_CONF. Storage
 * uses the vfs driver: slower than overlay, but it mounts nothing, so removing the
 * directory is the whole clean-up (the test images are a few MB).
 */

export interface Podman {
  podman(args: string[], opts?: Omit<RunOptions, "env">): Promise<RunResult>;
  readonly dir: string;
  /**
   * Starts podman's Docker-compatible API service on a socket in the state dir
   * (`podman system service`); returns its DOCKER_HOST. Stopped by `remove`.
   */
  serve(): Promise<string>;
  remove(): Promise<void>;
}

const SERVICE_START_MS = 30_000;

export async function makePodman(): Promise<Podman> {
  requireTools("podman", "runc");
  requireRoot();
  const dir = await mkdtemp(join(tmpdir(), "gantry-podman-"));
  await mkdir(join(dir, "tmp"));
  const containersConf = join(dir, "containers.conf");
  const storageConf = join(dir, "storage.conf");
  await writeFile(containersConf, [
    "[containers]",
    'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]',
    'netns = "none"',
    "",
    "[engine]",
    'runtime = "runc"',
    'cgroup_manager = "cgroupfs"',
    'events_logger = "file"',
    `tmp_dir = "${join(dir, "tmp")}"`,
    "",
  ].join("\n"));
  await writeFile(storageConf, [
    "[storage]",
    'driver = "vfs"',
    `graphroot = "${join(dir, "graph")}"`,
    `runroot = "${join(dir, "run")}"`,
    "",
  ].join("\n"));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CONTAINERS_CONF: containersConf,
    CONTAINERS_STORAGE_CONF: storageConf,
    // Keep podman away from the machine's registries.conf search list and auth file.
    CONTAINERS_REGISTRIES_CONF: join(dir, "registries.conf"),
    REGISTRY_AUTH_FILE: join(dir, "auth.json"),
  };
  await writeFile(join(dir, "registries.conf"), 'unqualified-search-registries = []\n');
  await writeFile(join(dir, "auth.json"), '{}\n');
  let service: ChildProcess | undefined;
  return {
    dir,
    podman: (args, opts = {}) => run("podman", args, { timeoutMs: 120_000, ...opts, env }),
    async serve() {
      const socket = join(dir, "api.sock");
      service ??= spawn("podman", ["system", "service", "--time=0", `unix://${socket}`], { env, stdio: "ignore" });
      service.once("error", () => {});
      const deadline = Date.now() + SERVICE_START_MS;
      while (!(await stat(socket).then(() => true, () => false))) {
        if (Date.now() > deadline || service.exitCode !== null) throw new Error("podman system service did not come up");
        await sleep(100);
      }
      return `unix://${socket}`;
    },
    async remove() {
      if (service?.pid !== undefined && service.exitCode === null) {
        const exited = new Promise((resolve) => service!.once("exit", resolve));
        process.kill(service.pid, "SIGTERM");
        await exited;
      }
      await removeDir(dir);
    },
  };
}

/** One podman state dir for all tests of a file; call at module level. */
export function sharedPodman(): { get(): Promise<Podman> } {
  let made: Promise<Podman> | undefined;
  after(async () => {
    if (!made) return;
    const p = await made.catch(() => undefined);
    await p?.remove();
  });
  return { get: () => (made ??= makePodman()) };
}
