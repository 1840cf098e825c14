import { chmodSync, lchownSync, lstatSync, readdirSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { ioError, throwIfAborted } from "../model/errors.js";
import { walkSources } from "../layer/sources.js";
import { runInRoot } from "../runtime/sandbox.js";
import { failureOf, treeToJson, type AgentJob, type AgentResult, type OwnerRecord } from "./rootless-job.js";
import { layDownSources, runExtraCommands } from "./stage.js";

/**
 * runAsRoot's agent for an ordinary user: `node rootless-agent.js JOB.json`, started by
 * rootless-stage.ts as root of a user namespace (see runtime/user-namespace.ts). Inside,
 * root may chown to every mapped id and read and write every file owned by one, so the
 * steps that need root happen here, on the root gantry extracted outside:
 *
 * 1. give the extracted paths the owners of the image (outside, all are the user's);
 * 2. lay the copyToRoot sources over them, owned by the spec's owner;
 * 3. run the script (unshare + chroot: runc would want cgroups the namespace cannot have),
 *    then extraCommands;
 * 4. walk the root with owners: the kernel reports them as ids inside the namespace, the
 *    very ids the script set, so nothing needs translating back;
 * 5. hand every path back to the user (owner 0 inside, readable, directories writable), so
 *    gantry outside can read the files while packing and remove the stage after. The walk
 *    already holds the real owners and modes; step 5 runs even when an earlier one failed.
 */

async function main(jobFile: string): Promise<void> {
  const job = JSON.parse(await readFile(jobFile, "utf8")) as AgentJob;
  const controller = new AbortController();
  process.once("SIGTERM", () => controller.abort(new Error("gantry stopped the runAsRoot agent")));
  const signal = controller.signal;
  let result: AgentResult;
  try {
    applyOwners(job.stage, job.owners, signal);
    const laid: string[] = [];
    await layDownSources(job.sources, job.stage, {
      owner: job.owner, signal, onOwned: (host) => laid.push(relative(job.stage, host)),
    });
    dropSupplementaryGroups();
    await runInRoot({ rootfs: job.stage, script: job.script, env: job.env, runtime: "unshare", signal });
    if (job.extraCommands !== undefined) await runExtraCommands(job.extraCommands, job.stage, signal);
    const tree = await walkSources([{ from: job.stage, to: "/" }], { owners: true, signal });
    result = { ok: true, tree: treeToJson(tree), laid };
  } catch (err) {
    result = failureOf(err);
  }
  try {
    returnToUser(job.stage);
  } catch (err) {
    if (result.ok) result = failureOf(err);
  }
  await writeFile(job.resultFile, JSON.stringify(result));
}

/**
 * The user's supplementary groups would show up in the script as an unmapped group
 * (65534); root in a container has none. Dropped only once the sources are laid, since
 * they may grant reading a source. Not possible with a single-id map (setgroups is
 * denied there), which leaves them.
 */
function dropSupplementaryGroups(): void {
  try {
    process.setgroups?.([]);
  } catch {
    // setgroups denied: the single-id map
  }
}

/** Owner, then mode (a chown clears setuid and setgid), never following a symlink. */
function applyOwners(stage: string, records: readonly OwnerRecord[], signal: AbortSignal): void {
  for (const [index, [path, uid, gid, mode, isSymlink]] of records.entries()) {
    if (index % 1024 === 0) throwIfAborted(signal);
    const host = join(stage, path);
    try {
      lchownSync(host, uid, gid);
      if (!isSymlink) chmodSync(host, mode);
    } catch (err) {
      throw ioError(`the staging path ${host}`, err);
    }
  }
}

/** Makes every path below `root` the user's (0 inside), readable, and directories writable and searchable. */
function returnToUser(root: string): void {
  const visit = (path: string): void => {
    const st = lstatSync(path);
    try {
      if (st.uid !== 0 || st.gid !== 0) lchownSync(path, 0, 0);
      if (st.isDirectory() && (st.mode & 0o700) !== 0o700) chmodSync(path, (st.mode & 0o7777) | 0o700);
      else if (st.isFile() && (st.mode & 0o400) === 0) chmodSync(path, (st.mode & 0o7777) | 0o400);
    } catch (err) {
      throw ioError(`the staging path ${path}`, err);
    }
    if (st.isDirectory()) for (const name of readdirSync(path)) visit(join(path, name));
  };
  visit(root);
}

const jobFile = process.argv[2];
if (jobFile === undefined) {
  process.stderr.write("usage: node rootless-agent.js JOB.json (gantry starts it in a user namespace)\n");
  process.exitCode = 2;
} else {
  main(jobFile).catch((err: unknown) => {
    process.stderr.write(`the runAsRoot agent failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
