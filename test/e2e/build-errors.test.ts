/**
 * Bad input, through the CLI: every failure exits 1 (2 for a usage error) with
 * exactly one stderr line `gantry: ...` that names the culprit, no stack trace, and
 * leaves a pre-existing -o destination byte for byte as it was, with no temporary
 * file left beside it. The builds run with --quiet: without it, SPEC allows one
 * progress line per step on stderr before the error (checked by the last test).
 */
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { copyFile, mkdir, open, readdir, readFile, stat, truncate, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { randomBytes } from "node:crypto";
import { archiveManifest } from "../helpers/archive.js";
import { fixtureBases } from "../helpers/bases.js";
import { payloadFiles, standardSpec, writePayload, type Spec } from "../helpers/build-case.js";
import { runGantry, type GantryResult } from "../helpers/gantry.js";
import { tmpDir } from "../helpers/tmp.js";
import { peerTest } from "../helpers/tools.js";

const bases = fixtureBases();

interface FailingBuild {
  dir: string;
  dest: string;
  before: Buffer;
  listing: string[];
  result: GantryResult;
}

/** Runs `gantry build` on `spec` in `dir`, over an existing destination file. */
async function buildOverExisting(t: TestContext, dir: string, spec: Spec | string, args: string[] = ["--quiet"]): Promise<FailingBuild> {
  const specPath = join(dir, "spec.json");
  await writeFile(specPath, typeof spec === "string" ? spec : JSON.stringify(spec));
  const dest = join(dir, "out.tar");
  const before = Buffer.concat([Buffer.from("a previous build, to be kept\n"), randomBytes(4096)]);
  await writeFile(dest, before);
  const listing = (await readdir(dir)).sort();
  const cache = await tmpDir(t, "gantry-errors-cache-");
  const result = await runGantry(["build", specPath, "-o", dest, ...args], { cwd: dir, env: { GANTRY_CACHE: cache } });
  return { dir, dest, before, listing, result };
}

/** A fresh directory with the standard payload in root/. */
async function caseDir(t: TestContext): Promise<string> {
  const dir = await tmpDir(t, "gantry-errors-");
  await writePayload(join(dir, "root"), payloadFiles());
  return dir;
}

/**
 * Exit status `code`, one `gantry: ` line naming every string of `culprits` (or at
 * least one of `anyOf`), no stack trace, destination untouched, nothing left beside it.
 */
async function assertCleanFailure(
  f: FailingBuild,
  want: { culprits?: string[]; anyOf?: string[]; code?: number },
): Promise<void> {
  const { result } = f;
  const shown = `exit ${result.code}, stderr: ${JSON.stringify(result.stderr)}`;
  assert.equal(result.code, want.code ?? 1, shown);
  const lines = result.stderr.replace(/\n$/, "").split("\n");
  assert.equal(lines.length, 1, `exactly one stderr line: ${shown}`);
  const line = lines[0] ?? "";
  assert.match(line, /^gantry: \S/, shown);
  assert.doesNotMatch(line, /\bat .+:\d+:\d+\)?$|node:internal|TypeError|ReferenceError/, `no stack trace: ${shown}`);
  for (const c of want.culprits ?? []) assert.ok(line.includes(c), `names ${JSON.stringify(c)}: ${shown}`);
  if (want.anyOf) assert.ok(want.anyOf.some((c) => line.includes(c)), `names one of ${JSON.stringify(want.anyOf)}: ${shown}`);
  assert.equal(result.stdout.length, 0, "nothing on stdout");
  assert.deepEqual(await readFile(f.dest), f.before, "the destination is byte-for-byte untouched");
  assert.deepEqual((await readdir(f.dir)).sort(), f.listing, "no temporary file left beside the destination");
}

peerTest("a truncated base archive", async (t) => {
  const dir = await caseDir(t);
  const good = (await bases.busyboxArchive()).ref;
  const bad = join(dir, "truncated-base.tar");
  await copyFile(good, bad);
  const { size } = await stat(bad);
  await truncate(bad, Math.floor(size * 0.6));
  const f = await buildOverExisting(t, dir, standardSpec("./truncated-base.tar"));
  await assertCleanFailure(f, { culprits: ["truncated-base.tar"] });
});

peerTest("a base whose layer is corrupted (its bytes no longer match its digest)", async (t) => {
  const dir = await caseDir(t);
  const good = (await bases.busyboxArchive()).ref;
  const bad = join(dir, "corrupt-base.tar");
  await copyFile(good, bad);
  // skopeo's archive starts with the layer (HEX.tar, uncompressed): flip one byte deep
  // inside busybox's contents, so every tar header stays intact.
  const [entry] = await archiveManifest(bad);
  const layerHex = basename(entry?.Layers[0] ?? "", ".tar");
  const fh = await open(bad, "r+");
  try {
    const at = 512 + 200_000;
    const byte = Buffer.alloc(1);
    await fh.read(byte, 0, 1, at);
    byte[0] = (byte[0] ?? 0) ^ 0xff;
    await fh.write(byte, 0, 1, at);
  } finally {
    await fh.close();
  }
  const f = await buildOverExisting(t, dir, standardSpec("./corrupt-base.tar"));
  await assertCleanFailure(f, { anyOf: ["corrupt-base.tar", layerHex.slice(0, 12)] });
});

peerTest("a fromImageTag the archive does not hold", async (t) => {
  const dir = await caseDir(t);
  const multi = (await bases.twoImages()).path;
  const f = await buildOverExisting(t, dir, standardSpec(multi, { fromImageName: "multi", fromImageTag: "three" }));
  await assertCleanFailure(f, { culprits: ["three"] });
});

peerTest("compressor lz4 is refused, naming the field and the value", async (t) => {
  const dir = await caseDir(t);
  const f = await buildOverExisting(t, dir, standardSpec(undefined, { compressor: "lz4" }));
  await assertCleanFailure(f, { culprits: ["compressor", "lz4"] });
});

peerTest("a name that is not a string is refused, naming the field", async (t) => {
  const dir = await caseDir(t);
  const f = await buildOverExisting(t, dir, standardSpec(undefined, { name: 5 }));
  await assertCleanFailure(f, { culprits: ["name"] });
});

peerTest("a spec file that is not JSON is refused, naming the file", async (t) => {
  const dir = await caseDir(t);
  const f = await buildOverExisting(t, dir, '{ "name": "x", ');
  await assertCleanFailure(f, { culprits: ["spec.json"] });
});

peerTest("a copyToRoot directory that does not exist", async (t) => {
  const dir = await caseDir(t);
  const f = await buildOverExisting(t, dir, standardSpec(undefined, { copyToRoot: ["./no-such-dir"] }));
  await assertCleanFailure(f, { culprits: ["no-such-dir"] });
});

peerTest("a copyToRoot path that is a file, not a directory", async (t) => {
  const dir = await caseDir(t);
  await writeFile(join(dir, "plain-file"), "not a directory\n");
  const f = await buildOverExisting(t, dir, standardSpec(undefined, { copyToRoot: ["./plain-file"] }));
  await assertCleanFailure(f, { culprits: ["plain-file"] });
});

peerTest("a source file named like a whiteout (.wh.*) is refused", async (t) => {
  const dir = await caseDir(t);
  await mkdir(join(dir, "root", "data"), { recursive: true });
  await writeFile(join(dir, "root", "data", ".wh.sneaky"), "");
  const f = await buildOverExisting(t, dir, standardSpec(undefined));
  await assertCleanFailure(f, { culprits: [".wh.sneaky"] });
});

peerTest("a base that does not exist", async (t) => {
  const dir = await caseDir(t);
  const f = await buildOverExisting(t, dir, standardSpec("./missing-base.tar"));
  await assertCleanFailure(f, { culprits: ["missing-base.tar"] });
});

peerTest("an unknown option is a usage error (exit 2)", async (t) => {
  const dir = await caseDir(t);
  const f = await buildOverExisting(t, dir, standardSpec(undefined), ["--quiet", "--no-such-option"]);
  await assertCleanFailure(f, { code: 2, culprits: ["--no-such-option"] });
});

peerTest("without --quiet, progress lines may precede the error, which is the one last `gantry: ` line", async (t) => {
  const dir = await caseDir(t);
  const f = await buildOverExisting(t, dir, standardSpec(undefined, { copyToRoot: ["./no-such-dir"] }), []);
  assert.equal(f.result.code, 1, f.result.stderr);
  const lines = f.result.stderr.replace(/\n$/, "").split("\n");
  assert.equal(lines.filter((l) => l.startsWith("gantry: ")).length, 1, f.result.stderr);
  assert.match(lines[lines.length - 1] ?? "", /^gantry: .*no-such-dir/, f.result.stderr);
  assert.doesNotMatch(f.result.stderr, /\n\s+at /, "no stack trace");
  assert.deepEqual(await readFile(f.dest), f.before);
});

peerTest("a bad --tag or --tls-verify value is a usage error (exit 2) before any work", async (t) => {
  const dir = await tmpDir(t);
  await writeFile(join(dir, "s.json"), JSON.stringify({ name: "a", tag: "1" }));
  const out = join(dir, "out.tar");
  const badTag = await runGantry(["build", join(dir, "s.json"), "-o", out, "--tag", "Not A Name"]);
  assert.equal(badTag.code, 2);
  assert.match(badTag.stderr, /^gantry: .*--tag.*Not A Name.*\n$/);
  const badBool = await runGantry(["build", join(dir, "s.json"), "-o", out, "--tls-verify=maybe"]);
  assert.equal(badBool.code, 2);
  assert.match(badBool.stderr, /^gantry: .*maybe.*\n$/);
  assert.equal(await stat(out).then(() => true, () => false), false);
});

peerTest("a base that is not the one fromImageDigest pins (the right pin builds)", async (t) => {
  const dir = await caseDir(t);
  const base = (await bases.busyboxArchive()).ref;
  const wrong = `sha256:${"0".repeat(64)}`;
  const f = await buildOverExisting(t, dir, standardSpec(base, { fromImageDigest: wrong }));
  await assertCleanFailure(f, { culprits: [wrong, "fromImageDigest"] });

  // The digest inspect shows for the same base is the pin that builds.
  const digest = (await runGantry(["inspect", base, "--json"])).stdout.toString("utf8");
  const pin = (JSON.parse(digest) as { Digest: string }).Digest;
  const again = await tmpDir(t, "gantry-pin-");
  await writePayload(join(again, "root"), payloadFiles());
  await writeFile(join(again, "spec.json"), JSON.stringify(standardSpec(base, { fromImageDigest: pin })));
  const ok = await runGantry(["build", join(again, "spec.json"), "-o", join(again, "out.tar")], { cwd: again });
  assert.equal(ok.code, 0, ok.stderr);
});
