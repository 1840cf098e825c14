import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { snapshotTree } from "../unit/export-fixtures.js";
import { runGantry, type GantryResult } from "./gantry.js";

/**
 * What every test of a refused input checks, for each command that reads an image: exit
 * status 1, nothing on stdout, one `gantry:` line that names the culprit, and nothing
 * written where the command was told to write (a sentinel directory, compared before and
 * after).
 */

export interface ReadingCommand {
  /** "inspect", "copy", ...: names the case in assertion messages. */
  name: string;
  args: string[];
}

let specs = 0;

/**
 * The commands that read `src`: inspect, copy, export, diff (against `other`, a sound image)
 * and build with `src` as base (its spec is written beside `out`). Whatever they would
 * write goes into `out`.
 */
export async function readingCommands(src: string, other: string, out: string): Promise<ReadingCommand[]> {
  const spec = join(out, "..", `refused-spec-${++specs}.json`);
  await writeFile(spec, JSON.stringify({ name: "refused", tag: "1", fromImage: src }));
  return [
    { name: "inspect", args: ["inspect", src] },
    { name: "copy", args: ["copy", src, `oci:${join(out, "copied")}`] },
    { name: "export", args: ["export", src, "-o", join(out, "rootfs.tar")] },
    { name: "diff", args: ["diff", src, other] },
    { name: "build", args: ["build", spec, "-o", join(out, "built.tar"), "--no-cache"] },
  ];
}

/** Exit 1, nothing on stdout, exactly one `gantry:` line, naming `culprit`. Returns the line. */
export function assertOneLineRefusal(r: GantryResult, culprit: string, label: string): string {
  assert.equal(r.code, 1, `${label}: exit status (${r.stderr})`);
  assert.equal(r.stdout.length, 0, `${label}: nothing on stdout`);
  const lines = r.stderr.split("\n").filter((l) => l.startsWith("gantry: "));
  assert.equal(lines.length, 1, `${label}: one gantry: line in ${JSON.stringify(r.stderr)}`);
  const line = lines[0]!;
  assert.ok(line.includes(culprit), `${label}: the line names ${culprit}: ${line}`);
  return line;
}

/** A directory for commands to write into, holding one file of its own. */
export async function sentinelDir(path: string): Promise<string> {
  await mkdir(path, { recursive: true });
  await writeFile(join(path, "keep"), "the sentinel's own file\n");
  return path;
}

/**
 * Runs every reading command on `src` and checks each is refused in one line naming
 * `culprit`, with `out` left as it was. Returns the lines, for tests that say more.
 */
export async function assertRefusedByEveryCommand(src: string, other: string, out: string, culprit: string, label: string, env?: NodeJS.ProcessEnv): Promise<string[]> {
  const before = await snapshotTree(out);
  const lines: string[] = [];
  for (const command of await readingCommands(src, other, out)) {
    const r: GantryResult = await runGantry(command.args, env ? { env } : {});
    lines.push(assertOneLineRefusal(r, culprit, `${label}, ${command.name}`));
    assert.deepEqual(await snapshotTree(out), before, `${label}, ${command.name}: nothing written`);
  }
  return lines;
}
