/**
 * A dependency upgrade with `maxLayers`: what travels to the registry, against the whole image.
 *
 *   npm run build && node dist/bench/upgrade.js APP_DIR [MAX_LAYERS]
 *
 * APP_DIR holds the app of bench/loop.ts (package.json and an installed node_modules; run
 * loop.js once to make it). It is copied to a temporary directory, built with
 * `"maxLayers": MAX_LAYERS` (default 12: the base's layer, the app's layer, and 10 for
 * node_modules split by package) and pushed to a registry on 127.0.0.1; then
 * `npm install lodash@4.17.20` runs in the copy and the image is built and pushed again.
 * Printed: the layers the second push sent (those the registry did not have), their bytes,
 * and that share of the whole image, beside a build without maxLayers for comparison.
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startRegistry } from "../test/helpers/registry.js";
import { gantry, mb } from "./lib.js";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const appSource = process.argv[2];
const maxLayers = Number(process.argv[3] ?? 12);

interface Built { layers: { digest: string; size: number; base: boolean }[] }

function build(spec: string, ref: string, cache: string): Built {
  const out = execFileSync(gantry, ["build", spec, "-o", ref, "--json"], { env: { ...process.env, GANTRY_CACHE: cache }, encoding: "utf8", maxBuffer: 1 << 24 });
  return JSON.parse(out) as Built;
}

/** What the second push sent: the layers the first image did not have (the registry had those), and their bytes. */
function sent(before: Built, after: Built): { layers: number; bytes: number; whole: number } {
  const had = new Set(before.layers.map((l) => l.digest));
  const fresh = after.layers.filter((l) => !had.has(l.digest));
  return { layers: fresh.length, bytes: fresh.reduce((n, l) => n + l.size, 0), whole: after.layers.reduce((n, l) => n + l.size, 0) };
}

async function main(): Promise<void> {
  if (!appSource) throw new Error("usage: node dist/bench/upgrade.js APP_DIR [MAX_LAYERS]");
  const work = await mkdtemp(join(tmpdir(), "gantry-bench-upgrade-"));
  const registry = await startRegistry();
  try {
    const app = join(work, "app");
    execFileSync("cp", ["-a", appSource, app]);
    execFileSync("bash", [join(repo, "test/fixtures/bases/umoci-busybox.sh"), join(work, "base")], { stdio: "ignore" });
    const specs: Record<string, string> = {};
    for (const [name, extra] of [["split", { maxLayers }], ["whole", {}]] as const) {
      specs[name] = join(app, `spec-${name}.json`);
      await writeFile(specs[name]!, JSON.stringify({
        name: "app", tag: name, fromImage: `oci:${join(work, "base/oci")}:1`, ...extra,
        layers: [
          { copyToRoot: [{ from: "./node_modules", to: "/app/node_modules" }] },
          { copyToRoot: [{ from: "./package.json", to: "/app/package.json" }] },
        ],
      }));
    }
    const cache = join(work, "cache");
    const first = { split: build(specs["split"]!, `docker://${registry.host}/app:split`, cache), whole: build(specs["whole"]!, `docker://${registry.host}/app:whole`, cache) };
    execFileSync("npm", ["install", "--no-audit", "--no-fund", "--ignore-scripts", "lodash@4.17.20"], { cwd: app, stdio: "ignore" });
    const second = { split: build(specs["split"]!, `docker://${registry.host}/app:split`, cache), whole: build(specs["whole"]!, `docker://${registry.host}/app:whole`, cache) };
    for (const name of ["split", "whole"] as const) {
      const s = sent(first[name], second[name]);
      const label = name === "split" ? `maxLayers ${maxLayers} (${second[name].layers.length} layers)` : `no maxLayers (${second[name].layers.length} layers)`;
      console.log(`${label.padEnd(32)} upgrade sent ${s.layers} layer(s), ${mb(s.bytes)} of ${mb(s.whole)}: ${((s.bytes / s.whole) * 100).toFixed(1)}% of the image`);
    }
  } finally {
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
