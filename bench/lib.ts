/**
 * What every benchmark here shares: a test tree copied from the host, timing of shell
 * pipelines and of async work, tool detection, and one table format with ratios.
 */
import { spawnSync } from "node:child_process";
import { copyFile, lstat, mkdir, readdir, readlink, symlink } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The gantry command as an installed gantry runs it (bin/gantry, from dist/bench/). Run
 * through `node dist/src/cli/gantry.mjs` instead, every command would also pay for node
 * loading NODE_EXTRA_CA_CERTS at start-up, where that is set (90 ms here; see bin/gantry).
 */
export const gantry = fileURLToPath(new URL("../../bin/gantry", import.meta.url));

export interface CopyState { bytes: number; files: number }

/** Copies files of `from` (sorted walk) into `to` until `budget` bytes are copied. */
export async function copySome(from: string, to: string, budget: number, state: CopyState = { bytes: 0, files: 0 }): Promise<CopyState> {
  let names: string[];
  try {
    names = (await readdir(from)).sort();
  } catch {
    return state;
  }
  await mkdir(to, { recursive: true });
  for (const name of names) {
    if (state.bytes >= budget) return state;
    const src = join(from, name);
    const dst = join(to, name);
    const st = await lstat(src).catch(() => undefined);
    if (st === undefined) continue;
    if (st.isDirectory()) await copySome(src, dst, budget, state);
    else if (st.isSymbolicLink()) await symlink(await readlink(src), dst);
    else if (st.isFile() && !name.startsWith(".wh.")) {
      if (st.size > budget - state.bytes) continue;
      await copyFile(src, dst).catch(() => undefined);
      state.bytes += st.size;
      state.files += 1;
    }
  }
  return state;
}

/**
 * Before a timed command: what the commands before it left to write goes to disk, untimed.
 * Right after `buildah rm` of 100,000 files, the next contender's first build took 5.5–8.9 s
 * instead of 4.9–5.6 s, a third of it in the kernel.
 */
export function settleDisk(): void {
  spawnSync("sync");
}

/** Runs a bash script (after settleDisk), returning its wall time in seconds; throws when it fails. */
export function timeShell(script: string, env?: NodeJS.ProcessEnv): number {
  settleDisk();
  const t0 = process.hrtime.bigint();
  const r = spawnSync("bash", ["-o", "pipefail", "-c", script], { stdio: ["ignore", "ignore", "inherit"], env: env ?? process.env });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${script} failed`);
  return seconds;
}

export async function timeAsync<T>(fn: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const t0 = process.hrtime.bigint();
  const value = await fn();
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, value };
}

export function has(tool: string): boolean {
  return spawnSync("bash", ["-c", `command -v ${tool}`], { stdio: "ignore" }).status === 0;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

export const mb = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MB`;

export interface Row { name: string; seconds: number; bytes?: number }

/** Prints rows with their time and size relative to the row named `reference`. */
export function printTable(rows: readonly Row[], reference: string): void {
  const ref = rows.find((r) => r.name === reference) ?? rows[0];
  if (!ref) return;
  console.log("");
  console.log(`${"contender".padEnd(34)}${"wall".padStart(10)}${"output".padStart(12)}${`time / ${reference}`.padStart(22)}${"size ratio".padStart(12)}`);
  for (const r of rows) {
    const size = r.bytes === undefined ? "" : mb(r.bytes);
    const sizeRatio = r.bytes === undefined || ref.bytes === undefined ? "" : `${(r.bytes / ref.bytes).toFixed(3)}x`;
    console.log(`${r.name.padEnd(34)}${`${r.seconds.toFixed(2)} s`.padStart(10)}${size.padStart(12)}${`${(r.seconds / ref.seconds).toFixed(2)}x`.padStart(22)}${sizeRatio.padStart(12)}`);
  }
}
