/**
 * Many machines, one cache: the speed issue's app built on two "machines" that share only a
 * registry.
 *
 *   npm run build && node dist/bench/cache.js [APP_DIR]
 *
 * Machine A is a checkout with an empty local cache: its cold build pushes the image and
 * records its layers in a cache repository (`--cache-to`). Machine B is a copy of the
 * checkout at another path, with new mtimes and its own empty local cache: it builds the
 * same spec with `--cache-from` and pushes to another repository of the same registry
 * (layers mounted, not uploaded), then again to an OCI archive (layers downloaded from the
 * cache). Both on one fresh registry on 127.0.0.1, in one run. The figure the issue asks
 * for is B's build+push against A's cold build (goal: 15% or less).
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gantry, timeShell } from "./lib.js";
import { makeBase, prepareApp, timed, writeAppSpec, type Timed } from "./app-fixture.js";
import { startRegistry } from "../test/helpers/registry.js";

function packed(t: Timed): number {
  return t.stderr.split("\n").filter((l) => l.includes("packing ")).length;
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "gantry-bench-cache-"));
  const appA = process.argv[2] ?? join(work, "a");
  const appB = join(work, "b");
  const registry = await startRegistry();
  try {
    await prepareApp(appA);
    const base = await makeBase(work);
    await writeAppSpec(appA, base);
    // Machine B: the same checkout elsewhere, every file with a new mtime (and inode).
    execFileSync("cp", ["-r", appA, appB]);
    timeShell(`tar -C ${appA} -cf - node_modules > /dev/null; tar -C ${appB} -cf - node_modules > /dev/null`); // warm the page cache
    const cacheRepo = `docker://${registry.host}/cache`;
    const build = (app: string, cache: string, flags: string, out: string): Timed =>
      timed(`${gantry} build ${join(app, "gantry-spec.json")} ${flags} -o ${out} --progress plain`, { ...process.env, GANTRY_CACHE: join(work, cache) });

    const a = build(appA, "cache-a", `--cache-to ${cacheRepo}`, `docker://${registry.host}/app:a`);
    const b = build(appB, "cache-b", `--cache-from ${cacheRepo}`, `docker://${registry.host}/app:b`);
    const bArchive = build(appB, "cache-b2", `--cache-from ${cacheRepo}`, `oci-archive:${join(work, "b.tar")}:app`);
    const served = await registry.served();
    const mounts = served.filter((r) => r.method === "POST" && r.uri.includes("mount=") && r.status === 201).length;

    const digestOf = (ref: string): string => execFileSync("skopeo", ["inspect", "--tls-verify=false", "--format", "{{.Digest}}", ref], { encoding: "utf8" }).trim();
    const same = digestOf(`docker://${registry.host}/app:a`) === digestOf(`docker://${registry.host}/app:b`);

    const line = (name: string, t: Timed): string =>
      `${name.padEnd(44)}${`${t.seconds.toFixed(2)} s`.padStart(10)}${`${(t.seconds / a.seconds * 100).toFixed(1)}%`.padStart(10)}${`${(t.rssKb / 1024).toFixed(0)} MB`.padStart(10)}${String(packed(t)).padStart(8)}`;
    console.log(`${"".padEnd(44)}${"time".padStart(10)}${"of A".padStart(10)}${"RSS".padStart(10)}${"packed".padStart(8)}`);
    console.log(line("A: cold build + push, --cache-to", a));
    console.log(line("B: build + push, --cache-from (same registry)", b));
    console.log(line("B: build to oci-archive, --cache-from", bArchive));
    console.log(`\nB's image digest ${same ? "equals" : "DIFFERS FROM"} A's; blob mounts served by the registry: ${mounts}`);
  } finally {
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
