import { after } from "node:test";
import { mkdtemp, mkdir, writeFile } from "node:fs/promises";
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
  remove(): Promise<void>;
}

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
  return {
    dir,
    podman: (args, opts = {}) => run("podman", args, { timeoutMs: 120_000, ...opts, env }),
    remove: () => removeDir(dir),
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
