/**
 * Images with no base, made of host programs and what they need (copyToRoot closureOf
 * and builtin entries), through the CLI:
 *
 * - a TypeScript spec with `closureOf(node)` and a hello script: the new layer holds
 *   exactly node, the files its loader maps (LD_TRACE_LOADED_OBJECTS=1 asks the loader
 *   itself) and the links on the paths the loader opens, and the image prints the
 *   greeting under runc (skopeo + umoci unpack) and under dockerd;
 * - binSh + fakeNss + tmp (+ the closure of a static busybox, for `id`): the image runs as
 *   User "nobody", which umoci and docker can only resolve through the image's
 *   /etc/passwd; its shell reads passwd, and /tmp is sticky and writable for nobody;
 * - a program whose library the loader cannot find: exit 1, one `gantry:` line naming the
 *   library and the program, and no output file; so too a closure of this host's programs
 *   in an image for another architecture.
 */
import assert from "node:assert/strict";
import { existsSync, realpathSync } from "node:fs";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { newLayerEntries } from "../helpers/image-checks.js";
import { sharedDockerd } from "../helpers/dockerd.js";
import { runGantry } from "../helpers/gantry.js";
import { loaderTrace, tracedPaths } from "../helpers/loader-trace.js";
import { fileTmpDir, tmpDir } from "../helpers/tmp.js";
import { peerTest, requireTools, runcRun, unpackWithPeers } from "../helpers/tools.js";

const dockerd = sharedDockerd();
const shared = fileTmpDir("gantry-closure-");

/** A dynamically linked node: the one on PATH where it is, else the one running the tests. */
const NODE = existsSync("/usr/bin/node") ? "/usr/bin/node" : realpathSync(process.execPath);
const GREETING = "hello from node, alone in its image";
const BUSYBOX = ["/usr/bin/busybox", "/bin/busybox"].find((p) => existsSync(p));

interface Built { out: string; dir: string }

async function build(name: string, spec: { file: string; text: string }, files: Record<string, string> = {}): Promise<Built> {
  const dir = join(await shared(), name);
  await mkdir(dir, { recursive: true });
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(dir, path, ".."), { recursive: true });
    await writeFile(join(dir, path), text);
  }
  await writeFile(join(dir, spec.file), spec.text);
  const out = join(dir, "out.tar");
  const r = await runGantry(["build", join(dir, spec.file), "-o", out]);
  assert.equal(r.code, 0, `gantry build ${name}: ${r.stderr}`);
  return { out, dir };
}

let nodeImage: Promise<Built> | undefined;
function theNodeImage(): Promise<Built> {
  nodeImage ??= build("node", {
    file: "image.ts",
    text: [
      `import { closureOf, defineImage } from "gantry";`,
      `export default defineImage({`,
      `  name: "gantry-test/closure-node", tag: "t",`,
      `  copyToRoot: [closureOf(${JSON.stringify(NODE)}), { from: "app", to: "/app" }],`,
      `  config: { Entrypoint: [${JSON.stringify(NODE)}, "/app/hello.js"] },`,
      `});`,
    ].join("\n"),
  }, { "app/hello.js": `console.log(${JSON.stringify(GREETING)});\n` });
  return nodeImage;
}

peerTest("closureOf node: the layer holds node, what its loader maps and the links to them, nothing else", async (t) => {
  requireTools("tar");
  const { out } = await theNodeImage();
  const entries = await newLayerEntries(out, await tmpDir(t));
  const trace = loaderTrace(NODE);
  assert.ok(trace.interpreter !== undefined && trace.libraries.size > 0, `${NODE} is dynamically linked`);
  const expected = [...tracedPaths(NODE, trace).map((p) => p.slice(1)), "app/hello.js"].sort();
  const nonDirs = entries.filter((e) => e.type !== "d").map((e) => e.path).sort();
  assert.deepEqual(nonDirs, expected);
  for (const e of entries.filter((x) => x.type === "l")) {
    assert.equal(e.linkTarget, execFileSync("readlink", [`/${e.path}`], { encoding: "utf8" }).trim(), `${e.path} keeps its target`);
  }
  assert.ok(!nonDirs.includes("etc/ld.so.cache"), "the host's cache is not carried");
});

peerTest("closureOf node runs under runc and prints the greeting", async (t) => {
  const { out } = await theNodeImage();
  const { bundle } = await unpackWithPeers(`docker-archive:${out}`, await tmpDir(t));
  assert.equal(await runcRun(bundle), `${GREETING}\n`);
});

peerTest("closureOf node runs under dockerd and prints the greeting", async () => {
  const { out } = await theNodeImage();
  const docker = await dockerd.get();
  await docker.docker(["load", "-i", out]);
  assert.equal(await docker.runImage("gantry-test/closure-node:t"), `${GREETING}\n`);
});

const SHELL_SCRIPT = [
  "while IFS= read -r line; do echo \"passwd: $line\"; done < /etc/passwd",
  "echo \"I am $(busybox id -un) ($(busybox id -u):$(busybox id -g))\"",
  "test -k /tmp && echo \"/tmp is sticky\"",
  "echo probe > /tmp/probe && echo \"/tmp is writable\"",
].join("\n");

let shellImage: Promise<Built> | undefined;
function theShellImage(): Promise<Built> {
  shellImage ??= build("shell", {
    file: "image.json",
    text: JSON.stringify({
      name: "gantry-test/closure-shell", tag: "t",
      copyToRoot: [{ builtin: "binSh" }, { builtin: "fakeNss" }, { builtin: "tmp" }, { closureOf: [BUSYBOX] }],
      config: { User: "nobody", Cmd: ["/bin/sh", "-c", SHELL_SCRIPT], Env: [`PATH=${BUSYBOX!.slice(0, BUSYBOX!.lastIndexOf("/"))}:/bin`] },
    }),
  });
  return shellImage;
}

const SHELL_OUTPUT_LINES = [
  /^passwd: root:x:0:0:/m,
  /^passwd: nobody:x:65534:65534:/m,
  /^I am nobody \(65534:65534\)$/m,
  /^\/tmp is sticky$/m,
  /^\/tmp is writable$/m,
];

function requireBusybox(): void {
  if (BUSYBOX === undefined) requireTools("busybox");
}

peerTest("binSh + fakeNss + tmp: a sticky /tmp and 0644 passwd files in the layer", async (t) => {
  requireBusybox();
  requireTools("tar");
  const { out } = await theShellImage();
  const byPath = new Map((await newLayerEntries(out, await tmpDir(t))).map((e) => [e.path, e]));
  assert.equal(byPath.get("tmp")?.type, "d");
  assert.equal(byPath.get("tmp")?.mode, 0o1777, "tmp is 1777");
  for (const f of ["etc/passwd", "etc/group", "etc/nsswitch.conf"]) {
    assert.equal(byPath.get(f)?.type, "-", f);
    assert.equal(byPath.get(f)?.mode, 0o644, f);
    assert.equal(byPath.get(f)?.uid, 0, f);
  }
  const sh = realpathSync("/bin/sh").slice(1);
  assert.equal(byPath.get(sh)?.type, "-", `the shell itself (${sh})`);
});

peerTest("binSh + fakeNss + tmp runs as nobody under runc: passwd is read, /tmp is sticky and writable", async (t) => {
  requireBusybox();
  const { out } = await theShellImage();
  const { bundle } = await unpackWithPeers(`docker-archive:${out}`, await tmpDir(t));
  const printed = await runcRun(bundle);
  for (const line of SHELL_OUTPUT_LINES) assert.match(printed, line);
});

peerTest("binSh + fakeNss + tmp runs as nobody under dockerd", async () => {
  requireBusybox();
  const { out } = await theShellImage();
  const docker = await dockerd.get();
  await docker.docker(["load", "-i", out]);
  const printed = await docker.runImage("gantry-test/closure-shell:t");
  for (const line of SHELL_OUTPUT_LINES) assert.match(printed, line);
});

peerTest("a program whose library cannot be found fails with one gantry: line naming both, and writes nothing", async (t) => {
  requireTools("gcc");
  const dir = await tmpDir(t);
  await mkdir(join(dir, "hidden"));
  await writeFile(join(dir, "gone.c"), "int gone(void) { return 0; }\n");
  await writeFile(join(dir, "main.c"), "int gone(void);\nint main(void) { return gone(); }\n");
  execFileSync("gcc", ["-shared", "-fPIC", "-Wl,-soname,libgone.so.1", "-o", join(dir, "hidden", "libgone.so.1"), join(dir, "gone.c")]);
  const program = join(dir, "needs-gone");
  // Linked against the library by path, with no RUNPATH: the loader will not find it.
  execFileSync("gcc", ["-o", program, join(dir, "main.c"), join(dir, "hidden", "libgone.so.1")]);
  await writeFile(join(dir, "image.json"), JSON.stringify({ name: "gantry-test/closure-missing", copyToRoot: [{ closureOf: ["./needs-gone"] }] }));
  const before = (await readdir(dir)).sort();
  const out = join(dir, "out.tar");
  const r = await runGantry(["build", join(dir, "image.json"), "-o", out, "--quiet"], { cwd: dir, env: { LD_LIBRARY_PATH: join(dir, "hidden") } });
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line: ${r.stderr}`);
  assert.match(lines[0]!, /^gantry: the library libgone\.so\.1 that \S*needs-gone needs is not found where the loader looks /);
  assert.equal(existsSync(out), false, "no output");
  assert.deepEqual((await readdir(dir)).sort(), before, "nothing left beside it");
});

peerTest("a closure of this host's programs in an image for another architecture is refused before any work", async (t) => {
  const dir = await tmpDir(t);
  const other = process.arch === "arm64" ? "amd64" : "arm64";
  await writeFile(join(dir, "image.json"), JSON.stringify({ name: "gantry-test/closure-other", platforms: [`linux/${other}`], copyToRoot: [{ closureOf: [NODE] }] }));
  const out = join(dir, "out");
  const r = await runGantry(["build", join(dir, "image.json"), "-o", `oci:${out}`, "--quiet"]);
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, new RegExp(`^gantry: the closureOf program ${NODE} is for .*, and the image is for ${other}; `));
  assert.equal(existsSync(out), false);
});
