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
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gantry, has, median, timeShell } from "./lib.js";
import { makeBase, prepareApp, timed, writeAppSpec, type Timed } from "./app-fixture.js";
import { startRegistry, type RunningRegistry as BenchRegistry } from "../test/helpers/registry.js";

const runs = Math.max(1, Number(process.argv[3] ?? 3));

async function edit(app: string, n: number): Promise<void> {
  await writeFile(join(app, "src/index.js"), `console.log('hello ${n}');\n`);
}

interface Figures { cold: Timed; edit: Timed[]; unchanged: Timed[] }

async function gantryLoop(app: string, base: string, registry: BenchRegistry, cache: string): Promise<Figures> {
  const spec = await writeAppSpec(app, base);
  const env = { ...process.env, GANTRY_CACHE: cache };
  const build = (): Timed => timed(`${gantry} build ${spec} -o docker://${registry.host}/app:dev --quiet`, env);
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
  const json = timed(`${gantry} build ${spec} -o docker://${registry.host}/app:dev --json`, env);
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
