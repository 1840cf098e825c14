import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { spawnGantry } from "../helpers/gantry.js";
import { tmpDir } from "../helpers/tmp.js";

/** Files that do not compress, so packing takes long enough to be interrupted. */
async function incompressibleTree(root: string, files: number, bytesEach: number): Promise<void> {
  await mkdir(root, { recursive: true });
  for (let i = 0; i < files; i++) await writeFile(join(root, `f${String(i).padStart(3, "0")}`), randomBytes(bytesEach));
}

async function listAll(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    out.push(p);
    if (e.isDirectory()) out.push(...await listAll(p));
  }
  return out.sort();
}

test("Ctrl-C during a build leaves the destination as it was and no temporary file anywhere", async (t) => {
  const dir = await tmpDir(t);
  await incompressibleTree(join(dir, "root"), 40, 4 * 1024 * 1024);
  await writeFile(join(dir, "s.json"), JSON.stringify({ name: "big", tag: "1", copyToRoot: ["./root"] }));
  const out = join(dir, "out", "image.tar");
  await mkdir(join(dir, "out"));
  await writeFile(out, "the previous image");
  const cache = join(dir, "cache");

  const { child, done } = spawnGantry(["build", join(dir, "s.json"), "-o", out], { env: { GANTRY_CACHE: cache } });
  // Interrupt once packing has started.
  await new Promise<void>((resolve) => {
    let seen = "";
    child.stderr.on("data", (c: Buffer) => {
      seen += c.toString();
      if (seen.includes("packing")) resolve();
    });
  });
  child.kill("SIGINT");
  const r = await done;
  assert.equal(r.code, 1);
  const lines = r.stderr.trim().split("\n");
  assert.match(lines[lines.length - 1] ?? "", /^gantry: interrupted by SIGINT/);
  assert.equal(await readFile(out, "utf8"), "the previous image");
  assert.deepEqual(await readdir(join(dir, "out")), ["image.tar"], "nothing left beside the destination");
  // The stat index holds what was hashed before the interruption: true of the files whatever became of the build.
  const leftovers = (await listAll(cache)).filter((p) => !p.endsWith("/blobs") && !p.endsWith("/sha256") && !p.endsWith("/tmp") && !p.startsWith(join(cache, "stat")));
  assert.deepEqual(leftovers, [], "no partial blob in the cache");
});
