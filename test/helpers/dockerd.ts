import { after } from "node:test";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, mkdir, open, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { removeDir } from "./tmp.js";
import { requireRoot, requireTools, run, type RunOptions, type RunResult } from "./tools.js";

/**
 * A private dockerd for tests: all state in one temp dir, its own unix socket,
 * no bridge, no iptables, no network for containers. Debian's client
 * (/usr/bin/docker, matching dockerd 20.10) talks to it; a newer client that may
 * be first on PATH is avoided on purpose.
 */

export const DOCKER_CLIENT = "/usr/bin/docker";

export interface DockerDaemon {
  /** DOCKER_HOST value of this daemon. */
  readonly host: string;
  /** Environment for scripts that call docker themselves (DOCKER_HOST, DOCKER, DOCKER_CONFIG). */
  readonly env: NodeJS.ProcessEnv;
  /** `docker ARGS` against this daemon; throws on failure unless allowFailure. */
  docker(args: string[], opts?: Omit<RunOptions, "env">): Promise<RunResult>;
  /**
   * `docker run --pull=never --rm --network none IMAGE CMD...`, returning stdout:
   * --pull=never so that an image that is not loaded can never send us to Docker Hub.
   */
  runImage(image: string, cmd?: string[]): Promise<string>;
  /** Stops the daemon by its PID and removes its state (unmounting leftovers). */
  stop(): Promise<void>;
  /** The daemon's PID and state directory, for tests of this helper. */
  readonly pid: number;
  readonly dir: string;
}

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 20_000;

export async function startDockerd(): Promise<DockerDaemon> {
  requireTools("dockerd", DOCKER_CLIENT);
  requireRoot();
  const dir = await mkdtemp(join(tmpdir(), "gantry-dockerd-"));
  const host = `unix://${join(dir, "sock")}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DOCKER_HOST: host,
    DOCKER: DOCKER_CLIENT,
    // A private client config: no credential store or proxy settings of the machine.
    DOCKER_CONFIG: join(dir, "client"),
  };
  await mkdir(join(dir, "client"));
  const log = await open(join(dir, "dockerd.log"), "w");
  let child: ChildProcess;
  try {
    child = spawn("dockerd", [
      "--data-root", join(dir, "data"),
      "--exec-root", join(dir, "exec"),
      "--pidfile", join(dir, "dockerd.pid"),
      "-H", host,
      "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
      "--userland-proxy=false", "--storage-driver", "overlay2",
      "--default-ulimit", "nofile=1024:1024",
    ], { stdio: ["ignore", log.fd, log.fd], env });
  } finally {
    await log.close();
  }
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  child.once("error", () => {});

  const docker = (args: string[], opts: Omit<RunOptions, "env"> = {}): Promise<RunResult> =>
    run(DOCKER_CLIENT, args, { ...opts, env });

  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      process.kill(child.pid, "SIGTERM");
      // The timer is cancelled once dockerd exits: a pending one would hold the test process open.
      const timer = new AbortController();
      const done = await Promise.race([
        exited.then(() => true),
        sleep(STOP_TIMEOUT_MS, false, { signal: timer.signal }).catch(() => false),
      ]);
      timer.abort();
      if (!done) {
        await killManagedContainerd(dir);
        process.kill(child.pid, "SIGKILL");
        await exited;
      }
    }
    await removeDir(dir);
  };

  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const info = await docker(["info", "--format", "{{.ServerVersion}}"], { allowFailure: true, timeoutMs: 10_000 });
    if (info.code === 0) break;
    const early = child.exitCode !== null || child.signalCode !== null;
    if (early || Date.now() > deadline) {
      const logText = await readFile(join(dir, "dockerd.log"), "utf8").catch(() => "");
      await stop();
      throw new Error(`dockerd did not come up (${early ? "it exited" : "timeout"}): ${logText.trimEnd().split("\n").slice(-10).join("\n")}`);
    }
    await sleep(200);
  }

  return {
    host,
    env,
    docker,
    async runImage(image, cmd = []) {
      const result = await docker(["run", "--pull=never", "--rm", "--network", "none", image, ...cmd], { timeoutMs: 60_000 });
      return result.stdout.toString("utf8");
    },
    stop,
    pid: child.pid ?? -1,
    dir,
  };
}

/** dockerd starts containerd itself; if dockerd has to be killed, that child must go too. */
async function killManagedContainerd(dir: string): Promise<void> {
  const pidText = await readFile(join(dir, "exec", "containerd", "containerd.pid"), "utf8").catch(() => "");
  const pid = Number.parseInt(pidText, 10);
  if (Number.isInteger(pid) && pid > 0) {
    try { process.kill(pid, "SIGKILL"); } catch { /* already gone */ }
  }
}

/**
 * One dockerd for all the tests of a file, started by the first test that asks
 * and stopped after the last one. Call at module level. When dockerd cannot run
 * here (not installed, not root), `get()` throws PeerUnavailable every time.
 */
export function sharedDockerd(): { get(): Promise<DockerDaemon> } {
  let started: Promise<DockerDaemon> | undefined;
  after(async () => {
    if (!started) return;
    const daemon = await started.catch(() => undefined);
    await daemon?.stop();
  });
  return {
    get() {
      started ??= startDockerd();
      return started;
    },
  };
}

