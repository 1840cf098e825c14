import { spawn, type ChildProcess } from "node:child_process";
import { writeFile } from "node:fs/promises";
import type { Readable } from "node:stream";
import { AbortedError, RuntimeError } from "../model/errors.js";
import { isSingleId, mapArguments, mapFileText, type IdMapLine, type IdMapping } from "./id-map.js";
import { OutputTail } from "./output-tail.js";
import { runCaptured, type RunResult } from "./process.js";

/**
 * Starts a program as root of a new user namespace, for a user who is not root.
 *
 * util-linux `unshare --user` makes the namespace and runs a tiny shell in it, which says
 * "ready" on fd 3 and then waits on its standard input. Meanwhile gantry writes the id map
 * on that shell's pid: with newuidmap and newgidmap (setuid helpers that check
 * /etc/subuid and /etc/subgid) when the map has subordinate ranges, else by writing
 * /proc/PID/uid_map and gid_map itself (a user may map its own ids, setgroups denied).
 * Only then does the shell exec the program, which therefore starts as uid 0 with every
 * capability inside the namespace. unshare's own --map-users option is not used: its
 * argument order changed between util-linux 2.38 and 2.39.
 */

/** The programs a namespace needs: unshare always, newuidmap/newgidmap for subordinate ranges. */
export interface NamespaceTools {
  unshare: string;
  newuidmap?: string | undefined;
  newgidmap?: string | undefined;
}

/** What runInUserNamespace starts (`command` with `args`, like spawn) and how it maps the namespace's ids. */
export interface UserNamespaceRun {
  tools: NamespaceTools;
  mapping: IdMapping;
  command: string;
  args: readonly string[];
  /** The program's whole environment; nothing of this process's is inherited. */
  env: NodeJS.ProcessEnv;
  cwd?: string;
  signal?: AbortSignal;
}

/** The shell in the fresh namespace: ready, wait for the map, then become the program. */
const WAIT_FOR_MAP = `printf 'ready\\n' >&3; exec 3>&-
read -r go || exit 125
[ "$go" = go ] || exit 125
exec "$@"`;

/** How long an aborted program gets to clean up after SIGTERM before it is killed. */
const STOP_GRACE_MS = 10_000;

/**
 * Runs `command args` as root of a new user namespace mapped by `mapping`; its output is
 * kept as tails, as runCaptured keeps it. An abort sends SIGTERM (the program may tidy
 * up), then SIGKILL after a grace period.
 * @throws RuntimeError when the namespace cannot be made or mapped; AbortedError on abort.
 */
export function runInUserNamespace(run: UserNamespaceRun): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const tail = new OutputTail();
    const errors = new OutputTail(5);
    const child = spawn(run.tools.unshare, ["--user", "--", "/bin/sh", "-c", WAIT_FOR_MAP, "gantry-userns", run.command, ...run.args], {
      cwd: run.cwd, env: run.env, stdio: ["pipe", "pipe", "pipe", "pipe"],
    });
    child.stdout?.on("data", (c: Buffer) => tail.write(c));
    child.stderr?.on("data", (c: Buffer) => { tail.write(c); errors.write(c); });
    child.stdin?.on("error", () => undefined);

    /** Why the run failed before the program started. */
    let failure: unknown;
    /** unshare exited before making the namespace; it says why on stderr, complete once it has exited. */
    let neverReady = false;
    let killTimer: NodeJS.Timeout | undefined;
    const onAbort = (): void => {
      child.kill("SIGTERM");
      killTimer = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
    };
    run.signal?.addEventListener("abort", onAbort, { once: true });
    if (run.signal?.aborted) onAbort();

    void whenReady(child).then(async (ready) => {
      const pid = child.pid;
      if (!ready || pid === undefined) {
        neverReady = true;
        return;
      }
      await writeIdMaps(run.tools, run.mapping, pid);
      child.stdin?.end("go\n");
    }).catch((err: unknown) => {
      failure = err;
      child.kill("SIGKILL");
    });

    child.on("error", (err) => {
      failure ??= new RuntimeError(`${run.tools.unshare} cannot be started: ${err.message}`, { cause: err });
      if (child.pid === undefined) reject(failure); // never started: no close may follow
    });
    child.on("close", (code, killedBy) => {
      run.signal?.removeEventListener("abort", onAbort);
      if (killTimer) clearTimeout(killTimer);
      // After the handshake's own failure (a few promise steps away) has been recorded.
      setImmediate(() => {
        if (run.signal?.aborted) reject(new AbortedError(run.signal.reason));
        else if (failure !== undefined) reject(failure);
        else if (neverReady) reject(new RuntimeError(`unshare --user could not make a user namespace (are unprivileged user namespaces disabled?): ${errors.oneLine()}`));
        else resolve({ status: code ?? undefined, killedBy: killedBy ?? undefined, tail, errors });
      });
    });
  });
}

/** Whether the shell inside the new namespace wrote "ready" on fd 3 (false: unshare failed first). */
function whenReady(child: ChildProcess): Promise<boolean> {
  const channel = child.stdio[3] as Readable | null | undefined;
  return new Promise((resolve) => {
    if (!channel) {
      resolve(false);
      return;
    }
    let said = "";
    channel.on("data", (c: Buffer) => {
      said += c.toString();
      if (said.includes("ready\n")) resolve(true);
    });
    channel.on("error", () => undefined);
    channel.on("close", () => resolve(said.includes("ready\n")));
  });
}

/** Maps the namespace of process `pid`: through newuidmap/newgidmap, or directly for the user's own ids alone. */
async function writeIdMaps(tools: NamespaceTools, mapping: IdMapping, pid: number): Promise<void> {
  await writeOneMap("uid", tools.newuidmap, mapping.uids, pid);
  if (isSingleId(mapping.gids)) {
    // The kernel lets an unprivileged writer map its own gid only once setgroups is denied.
    await writeProcFile(pid, "setgroups", "deny\n");
  }
  await writeOneMap("gid", tools.newgidmap, mapping.gids, pid);
}

async function writeOneMap(kind: "uid" | "gid", helper: string | undefined, lines: readonly IdMapLine[], pid: number): Promise<void> {
  if (isSingleId(lines)) {
    await writeProcFile(pid, `${kind}_map`, mapFileText(lines));
    return;
  }
  const name = kind === "uid" ? "newuidmap" : "newgidmap";
  if (helper === undefined) throw new RuntimeError(`mapping subordinate ${kind}s needs ${name}, which is not installed (apt-get install uidmap)`);
  const result = await runCaptured(helper, [String(pid), ...mapArguments(lines)], { env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin" } });
  if (result.status !== 0) {
    throw new RuntimeError(`${name} refused the ${kind} map ${mapArguments(lines).join(" ")}: ${result.tail.oneLine()}`);
  }
}

async function writeProcFile(pid: number, name: string, text: string): Promise<void> {
  try {
    await writeFile(`/proc/${pid}/${name}`, text);
  } catch (err) {
    throw new RuntimeError(`the user namespace's ${name} cannot be written: ${(err as Error).message}`, { cause: err });
  }
}
