import { after } from "node:test";
import { spawn, type ChildProcessByStdio } from "node:child_process";
import type { Readable } from "node:stream";
import { chmod, chown, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { CLI_PATH } from "./paths.js";
import { gantryEnv, runGantry, type GantryOptions, type GantryResult } from "./gantry.js";
import { PeerUnavailable, requireRoot, requireTools, run } from "./tools.js";

/**
 * Ordinary users for tests that show gantry working without root: made with useradd when
 * the tests run as root, with or without a range in /etc/subuid and /etc/subgid, and
 * removed (home and ranges too, by userdel) after the test file. gantry runs as them
 * through setpriv, with their own HOME and a GANTRY_CACHE they own.
 */

export interface OrdinaryUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
  /** Runs the gantry CLI as this user (cwd and paths must be reachable by it). */
  gantry(args: string[], opts?: Omit<GantryOptions, "prefix">): Promise<GantryResult>;
  /** Starts the gantry CLI as this user, for a test that signals it midway; stdout and stderr are pipes. */
  spawnGantry(args: string[], cwd: string): ChildProcessByStdio<null, Readable, Readable>;
  /** Runs any program as this user. */
  run(cmd: string, args: string[]): Promise<string>;
  /** Makes `dir` (and what it holds) the user's. */
  own(dir: string): Promise<void>;
}

export interface UserOptions {
  /** A range of subordinate uids and gids ("FIRST-LAST"), or none at all. */
  subordinate?: string;
}

/** The users of one test file. Call at module level (it registers their removal). */
export function ordinaryUsers() {
  const made = new Map<string, Promise<OrdinaryUser>>();
  after(async () => {
    if (process.getuid?.() !== 0) return;
    // Even a user whose making failed halfway (a failure afterwards leaves useradd's work).
    for (const [name, user] of made) {
      await user.catch(() => undefined);
      await run("userdel", ["--remove", name], { allowFailure: true });
    }
  });
  return {
    get(name: string, opts: UserOptions = {}): Promise<OrdinaryUser> {
      let user = made.get(name);
      if (!user) {
        user = makeUser(name, opts);
        made.set(name, user);
      }
      return user;
    },
  };
}

async function makeUser(name: string, opts: UserOptions): Promise<OrdinaryUser> {
  requireRoot();
  requireTools("useradd", "userdel", "usermod", "setpriv", "id");
  // A user left by an interrupted run would make useradd fail.
  await run("userdel", ["--remove", name], { allowFailure: true });
  // SUB_*_COUNT=0: no automatic ranges, so the user has exactly the ones given here.
  await run("useradd", ["--create-home", "--shell", "/bin/sh", "-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0", name]);
  if (opts.subordinate !== undefined) {
    await run("usermod", ["--add-subuids", opts.subordinate, "--add-subgids", opts.subordinate, name]);
  }
  const uid = Number((await run("id", ["-u", name])).stdout.toString().trim());
  const gid = Number((await run("id", ["-g", name])).stdout.toString().trim());
  const home = join("/home", name);
  const cache = join(home, "gantry-cache");
  await mkdir(cache, { recursive: true });
  await chown(cache, uid, gid);
  const prefix = ["setpriv", `--reuid=${name}`, `--regid=${name}`, "--init-groups", "--"];
  const env = { HOME: home, USER: name, LOGNAME: name, GANTRY_CACHE: cache, TMPDIR: undefined };
  const user: OrdinaryUser = {
    name, uid, gid, home,
    gantry: (args, o = {}) => runGantry(args, { ...o, prefix, env: { ...env, ...o.env } }),
    spawnGantry: (args, cwd) => spawn(prefix[0] ?? "setpriv", [...prefix.slice(1), process.execPath, CLI_PATH, ...args], {
      cwd, env: gantryEnv(env), stdio: ["ignore", "pipe", "pipe"],
    }),
    run: async (cmd, args) => (await run(prefix[0] ?? "setpriv", [...prefix.slice(1), cmd, ...args], { env: { ...process.env, HOME: home } })).stdout.toString(),
    own: async (dir) => { await run("chown", ["-R", `${uid}:${gid}`, dir]); },
  };
  const readable = await run(prefix[0] ?? "setpriv", [...prefix.slice(1), "test", "-r", CLI_PATH], { allowFailure: true });
  if (readable.code !== 0) throw new PeerUnavailable(`the built CLI ${CLI_PATH} is not readable by an ordinary user`);
  return user;
}

/** Opens `dirs` (and everything below) to every user for reading: fixtures made by root in private temp dirs. */
export async function openToAll(...dirs: string[]): Promise<void> {
  for (const dir of dirs) {
    await chmod(dir, 0o755);
    await run("chmod", ["-R", "a+rX", dir]);
  }
}
