/**
 * What a person watching a build sees. On a terminal (a pseudo-terminal made by
 * `script -qec`), the layer being packed and the archive being written each get a bar that
 * is redrawn in place, the cursor is hidden while they run and given back after, and the
 * build ends with one summary line; a push draws a bar per layer sent, a pull one per layer
 * fetched. Off a terminal the same build prints plain lines with
 * no escape codes; --quiet prints nothing at all.
 */
import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runGantry, runGantryOnTty } from "../helpers/gantry.js";
import { tmpDir } from "../helpers/tmp.js";
import { requireTools } from "../helpers/tools.js";
import { startRegistry } from "../helpers/registry.js";

const ESC = "\x1b";
const HIDE_CURSOR = `${ESC}[?25l`;
const SHOW_CURSOR = `${ESC}[?25h`;
const SUMMARY = /^built progress:1 sha256:[0-9a-f]{64} [\d.]+ (kB|MB), 1 layer \((\d) new, (\d) cached, 0 base\) in [\d.]+ s -> \S+out\.tar$/m;

/**
 * A spec whose one layer takes a moment to pack: 24 MB that gzip cannot shrink, at level 9;
 * or, for a transfer to take a moment on loopback, where 25 MB went in 0.1 s, before a bar
 * was ever drawn: more megabytes at a level that packs them quickly.
 */
async function slowSpec(t: TestContext, { megabytes = 24, level = 9 } = {}): Promise<{ dir: string; spec: string; out: string }> {
  const dir = await tmpDir(t, "gantry-progress-");
  await mkdir(join(dir, "root", "data"), { recursive: true });
  await writeFile(join(dir, "root", "data", "noise.bin"), randomBytes(megabytes * 1024 * 1024));
  const spec = join(dir, "spec.json");
  await writeFile(spec, JSON.stringify({ name: "progress", tag: "1", copyToRoot: ["./root"], compressionLevel: level }));
  return { dir, spec, out: join(dir, "out.tar") };
}

/** Each time a bar labelled `label` is drawn: the text between a move to column 1 and the next. */
function drawsOf(transcript: string, label: string): string[] {
  return transcript.split(`${ESC}[1G`).filter((part) => part.startsWith(label) && part.includes("["));
}

test("on a terminal, bars are redrawn in place and the build ends with one summary line", async (t) => {
  requireTools("script");
  const { dir, spec, out } = await slowSpec(t);
  const r = await runGantryOnTty(["build", spec, "-o", out, "--no-cache"], { cwd: dir, env: { GANTRY_CACHE: join(dir, "cache") } });
  const transcript = r.stdout.toString("utf8");
  assert.equal(r.code, 0, transcript);

  const packing = drawsOf(transcript, "packing new layer");
  assert.ok(packing.length >= 2, `the packing bar was drawn ${packing.length} time(s):\n${JSON.stringify(transcript)}`);
  for (const draw of packing.slice(0, -1)) {
    // Redrawn in place: a draw ends by clearing the rest of its line, never by a new line.
    assert.match(draw, /\] [\d.]+ (B|kB|MB) \/ [\d.]+ MB +[\d.]+ (B|kB|MB)\/s/);
    assert.ok(!draw.includes("\n"), `a bar draw moved to a new line: ${JSON.stringify(draw)}`);
  }
  const sizes = packing.map((d) => /\] ([\d.]+) (B|kB|MB) \//.exec(d)!).map((m) => Number(m[1]) * { B: 1e-6, kB: 1e-3, MB: 1 }[m[2] as "B"]);
  assert.ok(sizes.some((s, i) => i > 0 && s > sizes[0]!), `the bar never advanced: ${sizes.join(", ")}`);
  assert.match(transcript, /packing new layer 1\/1: [\d.]+ MB in [\d.]+ s/, "a finished piece leaves one line with its size and time");

  assert.ok(transcript.includes(HIDE_CURSOR) && transcript.lastIndexOf(SHOW_CURSOR) > transcript.lastIndexOf(HIDE_CURSOR), "the cursor is given back");
  const lines = transcript.replace(/\r/g, "").split("\n");
  const summaries = lines.filter((l) => SUMMARY.test(l.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "")));
  assert.equal(summaries.length, 1, `one summary line:\n${transcript}`);
  assert.match(summaries[0]!, /1 new, 0 cached/);
});

test("off a terminal the same build prints plain lines; --quiet prints nothing", async (t) => {
  const { dir, spec, out } = await slowSpec(t);
  const env = { GANTRY_CACHE: join(dir, "cache") };
  const first = await runGantry(["build", spec, "-o", out], { cwd: dir, env });
  assert.equal(first.code, 0, first.stderr);
  const stderr = first.stderr;
  assert.ok(!stderr.includes(ESC), `escape codes off a terminal: ${JSON.stringify(stderr)}`);
  assert.match(stderr, /^packing layer 1\/1: \d+ entries \(gzip\)$/m);
  assert.match(stderr, SUMMARY);
  assert.match(SUMMARY.exec(stderr)![0], /1 new, 0 cached/);
  assert.equal(first.stdout.length, 0, "stdout carries only requested data");

  // Built again: the summary counts the layer as cached.
  const again = await runGantry(["build", spec, "-o", out], { cwd: dir, env });
  assert.equal(again.code, 0, again.stderr);
  assert.match(SUMMARY.exec(again.stderr)?.[0] ?? "", /0 new, 1 cached/);

  const quiet = await runGantry(["--quiet", "build", spec, "-o", out], { cwd: dir, env });
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.equal(quiet.stderr.length, 0, `--quiet printed: ${quiet.stderr}`);

  // --progress tty keeps the bars' view in a pipe (a CI log): each finished piece's line.
  const forced = await runGantry(["--progress", "tty", "build", spec, "-o", out, "--no-cache"], { cwd: dir, env });
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(forced.stderr, /packing new layer 1\/1: [\d.]+ MB in [\d.]+ s/);
  assert.doesNotMatch(stderr, /packing new layer 1\/1: [\d.]+ MB in/, "plain lines have no byte counts");
});

test("an error on a terminal leaves the cursor shown and one gantry: line", async (t) => {
  requireTools("script");
  const dir = await tmpDir(t, "gantry-progress-");
  const spec = join(dir, "spec.json");
  await writeFile(spec, JSON.stringify({ name: "progress", tag: "1", copyToRoot: ["./missing"] }));
  const r = await runGantryOnTty(["build", spec, "-o", join(dir, "out.tar")], { cwd: dir, env: { GANTRY_CACHE: join(dir, "cache") } });
  const transcript = r.stdout.toString("utf8");
  assert.equal(r.code, 1, transcript);
  const gantryLines = transcript.replace(/\r/g, "").split("\n").filter((l) => l.includes("gantry:"));
  assert.equal(gantryLines.length, 1, transcript);
  assert.match(gantryLines[0]!, /missing/);
  if (transcript.includes(HIDE_CURSOR)) assert.ok(transcript.lastIndexOf(SHOW_CURSOR) > transcript.lastIndexOf(HIDE_CURSOR));
});

test("on a terminal, a push draws a bar per layer sent and a pull one per layer fetched", async (t) => {
  requireTools("script", "docker-registry");
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const { dir, spec } = await slowSpec(t, { megabytes: 128, level: 1 });
  const env = { GANTRY_CACHE: join(dir, "cache") };
  const push = await runGantryOnTty(["build", spec, "-o", `docker://${registry.host}/progress:1`], { cwd: dir, env });
  const pushed = push.stdout.toString("utf8");
  assert.equal(push.code, 0, pushed);
  assert.ok(drawsOf(pushed, "sending layer 1 of ").length >= 1, `no bar for the layer sent:\n${JSON.stringify(pushed)}`);
  assert.match(pushed, /sending layer 1 of \S+: [\d.]+ MB in [\d.]+ s/, "the finished upload leaves its size and time");

  const pull = await runGantryOnTty(["pull", `docker://${registry.host}/progress:1`, "-o", join(dir, "pulled.tar")], { cwd: dir, env: { GANTRY_CACHE: join(dir, "cache-pull") } });
  const pulled = pull.stdout.toString("utf8");
  assert.equal(pull.code, 0, pulled);
  assert.ok(drawsOf(pulled, "fetching layer").length >= 1, `no bar for the layer fetched:\n${JSON.stringify(pulled)}`);
  assert.match(pulled, /fetching layer \S+: [\d.]+ MB in [\d.]+ s/);
});
