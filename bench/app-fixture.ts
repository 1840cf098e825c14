/**
 * The speed issue's app, shared by the benchmarks that build it (loop.ts, cache.ts): a
 * Node.js app whose dependencies (bench/app/package.json) are one layer and whose src/ is
 * the next, on a small base made by umoci and skopeo; and a timer that also reads peak RSS.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { cp, mkdir, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { settleDisk } from "./lib.js";

export const repo = fileURLToPath(new URL("../../", import.meta.url));

export interface Timed { seconds: number; rssKb: number; stdout: string; stderr: string }

/** Runs a shell command under GNU time; its wall time, peak RSS and output. */
export function timed(script: string, env: NodeJS.ProcessEnv = process.env): Timed {
  const rssFile = join(tmpdir(), `gantry-bench-rss-${process.pid}`);
  settleDisk();
  const t0 = process.hrtime.bigint();
  const r = spawnSync("/usr/bin/time", ["-f", "%M", "-o", rssFile, "bash", "-o", "pipefail", "-c", script], { env, encoding: "utf8", maxBuffer: 1 << 24 });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${script} failed: ${r.stderr}`);
  const rssKb = Number(execFileSync("cat", [rssFile], { encoding: "utf8" }).trim().split("\n").pop());
  return { seconds, rssKb, stdout: r.stdout, stderr: r.stderr };
}

/** `npm install` of bench/app/package.json into `dir`, unless it already holds node_modules. */
export async function prepareApp(dir: string): Promise<void> {
  await mkdir(join(dir, "src"), { recursive: true });
  if (!(await stat(join(dir, "node_modules")).catch(() => undefined))) {
    await cp(join(repo, "bench/app/package.json"), join(dir, "package.json"));
    console.log(`npm install in ${dir} (once)...`);
    execFileSync("npm", ["install", "--no-audit", "--no-fund", "--ignore-scripts"], { cwd: dir, stdio: "inherit" });
  }
  await writeFile(join(dir, "src/index.js"), "console.log('hello 0');\n");
}

/** A small base as an OCI archive with gzip layers, as a registry base would be (umoci + skopeo). */
export async function makeBase(work: string): Promise<string> {
  execFileSync("bash", [join(repo, "test/fixtures/bases/umoci-busybox.sh"), join(work, "base")], { stdio: "ignore" });
  const out = join(work, "base.tar");
  execFileSync("skopeo", ["copy", "--quiet", `oci:${join(work, "base/oci")}:1`, `oci-archive:${out}:1`]);
  return out;
}

/** The app's spec (dependencies layer, then src/ and package.json), written into the app; its path. */
export async function writeAppSpec(app: string, base: string): Promise<string> {
  const spec = join(app, "gantry-spec.json");
  await writeFile(spec, JSON.stringify({
    name: "app", tag: "dev", fromImage: `oci-archive:${base}:1`,
    layers: [
      { copyToRoot: [{ from: "./node_modules", to: "/app/node_modules" }] },
      { copyToRoot: [{ from: "./src", to: "/app/src" }, { from: "./package.json", to: "/app/package.json" }] },
    ],
    config: { Cmd: ["node", "/app/src/index.js"], WorkingDir: "/app" },
  }));
  return spec;
}
