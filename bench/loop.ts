/**
 * The user's loop, side by side with buildah, in one run: a Node.js app whose dependencies
 * (bench/app/package.json: 24 common packages, about 700 installed, 35,000 entries and
 * 560 MB of node_modules) are one layer and whose src/ is the next, built on a small base
 * and pushed to a registry on 127.0.0.1.
 *
 *   npm run build && node dist/bench/loop.js [APP_DIR] [RUNS]
 *
 * APP_DIR (default: a temporary directory) gets bench/app/package.json and `npm install`
 * unless it already holds node_modules. For each tool, on a fresh registry:
 *   cold       the first build and push (empty cache)
 *   edit       a one-line change in src/index.js, then build and push (median of RUNS, default 3)
 *   unchanged  build and push with nothing changed (median of RUNS)
 * gantry: `gantry build SPEC -o docker://127.0.0.1:PORT/app:dev`, each a new process.
 * buildah: `buildah bud --layers` of the equivalent Dockerfile (`FROM oci-archive:BASE`,
 * `COPY node_modules`, `COPY src`) then `buildah push`, overlay storage (vfs if overlay fails).
 * Also printed: what gantry uploaded on an edit (blobs and bytes) and its peak RSS.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { cp, mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { has, timeShell } from "./lib.js";
import { startRegistry, type RunningRegistry as BenchRegistry } from "../test/helpers/registry.js";

const cli = fileURLToPath(new URL("../src/cli/gantry.mjs", import.meta.url));
const repo = fileURLToPath(new URL("../../", import.meta.url));
const runs = Math.max(1, Number(process.argv[3] ?? 3));

interface Timed { seconds: number; rssKb: number; stdout: string }

/** Runs a shell command under GNU time; its wall time, peak RSS and stdout. */
function timed(script: string, env: NodeJS.ProcessEnv = process.env): Timed {
  const rssFile = join(tmpdir(), `gantry-bench-rss-${process.pid}`);
  const t0 = process.hrtime.bigint();
  const r = spawnSync("/usr/bin/time", ["-f", "%M", "-o", rssFile, "bash", "-o", "pipefail", "-c", script], { env, encoding: "utf8", maxBuffer: 1 << 24 });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${script} failed: ${r.stderr}`);
  const rssKb = Number(execFileSync("cat", [rssFile], { encoding: "utf8" }).trim().split("\n").pop());
  return { seconds, rssKb, stdout: r.stdout };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

async function prepareApp(dir: string): Promise<void> {
  await mkdir(join(dir, "src"), { recursive: true });
  if (!(await stat(join(dir, "node_modules")).catch(() => undefined))) {
    await cp(join(repo, "bench/app/package.json"), join(dir, "package.json"));
    console.log(`npm install in ${dir} (once)...`);
    execFileSync("npm", ["install", "--no-audit", "--no-fund", "--ignore-scripts"], { cwd: dir, stdio: "inherit" });
  }
  await writeFile(join(dir, "src/index.js"), "console.log('hello 0');\n");
}

/** A small base as an OCI archive with gzip layers, as a registry base would be (umoci + skopeo). */
async function makeBase(work: string): Promise<string> {
  execFileSync("bash", [join(repo, "test/fixtures/bases/umoci-busybox.sh"), join(work, "base")], { stdio: "ignore" });
  const out = join(work, "base.tar");
  execFileSync("skopeo", ["copy", "--quiet", `oci:${join(work, "base/oci")}:1`, `oci-archive:${out}:1`]);
  return out;
}

async function edit(app: string, n: number): Promise<void> {
  await writeFile(join(app, "src/index.js"), `console.log('hello ${n}');\n`);
}

interface Figures { cold: Timed; edit: Timed[]; unchanged: Timed[] }

async function gantryLoop(app: string, base: string, registry: BenchRegistry, cache: string): Promise<Figures> {
  const spec = join(app, "gantry-spec.json");
  await writeFile(spec, JSON.stringify({
    name: "app", tag: "dev", fromImage: `oci-archive:${base}:1`,
    layers: [
      { copyToRoot: [{ from: "./node_modules", to: "/app/node_modules" }] },
      { copyToRoot: [{ from: "./src", to: "/app/src" }, { from: "./package.json", to: "/app/package.json" }] },
    ],
    config: { Cmd: ["node", "/app/src/index.js"], WorkingDir: "/app" },
  }));
  const env = { ...process.env, GANTRY_CACHE: cache };
  const build = (): Timed => timed(`node ${cli} build ${spec} -o docker://${registry.host}/app:dev --quiet`, env);
  const cold = build();
  const editRuns: Timed[] = [];
  for (let i = 1; i <= runs; i++) {
    await edit(app, i);
    editRuns.push(build());
  }
  const unchanged: Timed[] = [];
  for (let i = 0; i < runs; i++) unchanged.push(build());
  // What an edit sends: one more edit, with the push's account of it.
  await edit(app, runs + 1);
  const json = timed(`node ${cli} build ${spec} -o docker://${registry.host}/app:dev --json`, env);
  const layers = (JSON.parse(json.stdout) as { layers: { cached: boolean; base: boolean; size: number }[] }).layers;
  const sent = layers.filter((l) => !l.base && !l.cached);
  console.log(`gantry edit: ${sent.length} new layer(s) of ${sent.reduce((n, l) => n + l.size, 0)} bytes, plus the config and the manifest, are all that is pushed`);
  return { cold, edit: editRuns, unchanged };
}

async function buildahLoop(app: string, base: string, registry: BenchRegistry, work: string): Promise<Figures | undefined> {
  if (!has("buildah")) return undefined;
  await writeFile(join(app, "Dockerfile"), [
    `FROM oci-archive:${base}:1`,
    "WORKDIR /app",
    "COPY node_modules /app/node_modules",
    "COPY package.json /app/package.json",
    "COPY src /app/src",
    'CMD ["node", "/app/src/index.js"]',
    "",
  ].join("\n"));
  await writeFile(join(app, ".dockerignore"), "gantry-spec.json\nDockerfile\n");
  let figures: Figures | undefined;
  for (const driver of ["overlay", "vfs"]) {
    const b = `buildah --root ${join(work, `buildah-${driver}`)} --runroot ${join(work, `buildah-run-${driver}`)} --storage-driver ${driver}`;
    const round = (): Timed => timed(`${b} bud --quiet --layers -t app:dev ${app} >/dev/null && ${b} push --quiet --tls-verify=false app:dev docker://${registry.host}/app-buildah-${driver}:dev`);
    try {
      const cold = round();
      const editRuns: Timed[] = [];
      for (let i = 1; i <= runs; i++) {
        await edit(app, 100 + i);
        editRuns.push(round());
      }
      const unchanged: Timed[] = [];
      for (let i = 0; i < runs; i++) unchanged.push(round());
      figures = { cold, edit: editRuns, unchanged };
      console.log(`buildah storage driver: ${driver}`);
      break;
    } catch (err) {
      console.log(`buildah with ${driver} failed (${(err as Error).message.split("\n")[0]}); trying the next driver`);
    } finally {
      spawnSync("bash", ["-c", `${b} rmi --all --force >/dev/null 2>&1; umount -R ${join(work, `buildah-${driver}`)}/* 2>/dev/null; true`]);
    }
  }
  return figures;
}

function row(name: string, g: number, b: number | undefined): string {
  const ratio = b === undefined ? "" : `${(g / b).toFixed(2)}x`;
  return `${name.padEnd(12)}${`${g.toFixed(2)} s`.padStart(10)}${(b === undefined ? "-" : `${b.toFixed(2)} s`).padStart(12)}${ratio.padStart(18)}`;
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "gantry-bench-loop-"));
  const app = process.argv[2] ?? join(work, "app");
  const registry = await startRegistry();
  try {
    await prepareApp(app);
    timeShell(`tar -C ${app} -cf - node_modules > /dev/null`); // warm the page cache
    const base = await makeBase(work);
    const g = await gantryLoop(app, base, registry, join(work, "cache"));
    const b = await buildahLoop(app, base, registry, work);
    console.log("");
    console.log(`${"".padEnd(12)}${"gantry".padStart(10)}${"buildah".padStart(12)}${"gantry / buildah".padStart(18)}`);
    console.log(row("cold", g.cold.seconds, b?.cold.seconds));
    console.log(row("edit", median(g.edit.map((t) => t.seconds)), b && median(b.edit.map((t) => t.seconds))));
    console.log(row("unchanged", median(g.unchanged.map((t) => t.seconds)), b && median(b.unchanged.map((t) => t.seconds))));
    console.log(`\nedit runs (s): gantry ${g.edit.map((t) => t.seconds.toFixed(2)).join(", ")}${b ? `; buildah ${b.edit.map((t) => t.seconds.toFixed(2)).join(", ")}` : ""}`);
    console.log(`gantry peak RSS: cold ${(g.cold.rssKb / 1024).toFixed(0)} MB, edit ${(Math.max(...g.edit.map((t) => t.rssKb)) / 1024).toFixed(0)} MB, unchanged ${(Math.max(...g.unchanged.map((t) => t.rssKb)) / 1024).toFixed(0)} MB`);
  } finally {
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
