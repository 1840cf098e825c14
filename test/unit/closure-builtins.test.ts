/**
 * The builtins (src/builder/builtins.ts) and the store of generated files they use
 * (generated-files.ts): fixed content and mode whatever the umask, one host file per
 * content that stays put across builds (so the layer cache can key it) and is repaired
 * when tampered with; and the expansion of a plan's closureOf/builtin entries into
 * ordinary sources, with the check of a closure against the image's architecture.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { lstatSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { builtinSources, IMAGE_CA_BUNDLE } from "../../src/builder/builtins.js";
import { GeneratedFiles } from "../../src/builder/generated-files.js";
import { checkClosureArchitecture, expandSources } from "../../src/builder/expand-sources.js";
import { planBuild } from "../../src/builder/plan.js";
import { validateSpec } from "../../src/builder/spec-load.js";
import { resolveClosure } from "../../src/builder/closure/resolve.js";
import { walkSources } from "../../src/layer/sources.js";
import { GantryError } from "../../src/model/errors.js";
import { tmpDir } from "../helpers/tmp.js";

test("fakeNss: passwd and group with root and nobody, an nsswitch.conf, each 0644 whatever the umask", async (t) => {
  const dir = await tmpDir(t);
  const old = process.umask(0o077);
  let sources;
  try {
    sources = (await builtinSources("fakeNss", { generated: new GeneratedFiles(join(dir, "gen")) })).sources;
  } finally {
    process.umask(old);
  }
  assert.deepEqual(sources.map((s) => s.to), ["/etc/passwd", "/etc/group", "/etc/nsswitch.conf"]);
  const text = (to: string) => readFileSync(sources.find((s) => s.to === to)!.from, "utf8");
  const passwd = text("/etc/passwd").trim().split("\n").map((l) => l.split(":"));
  assert.deepEqual(passwd.map((f) => [f[0], f[2], f[3]]), [["root", "0", "0"], ["nobody", "65534", "65534"]]);
  assert.ok(passwd.every((f) => f.length === 7), "seven fields a line");
  assert.deepEqual(text("/etc/group").trim().split("\n").map((l) => l.split(":").slice(0, 3)), [["root", "x", "0"], ["nobody", "x", "65534"]]);
  assert.match(text("/etc/nsswitch.conf"), /^passwd: +files$/m);
  assert.match(text("/etc/nsswitch.conf"), /^hosts: +files dns$/m);
  for (const s of sources) assert.equal(statSync(s.from).mode & 0o7777, 0o644, s.to);
  assert.equal(statSync(join(dir, "gen")).mode & 0o777, 0o700, "the store is private");
});

test("tmp: an empty directory of mode 1777, walked as /tmp", async (t) => {
  const dir = await tmpDir(t);
  const { sources } = await builtinSources("tmp", { generated: new GeneratedFiles(join(dir, "gen")) });
  const tree = await walkSources(sources);
  assert.deepEqual([...tree.entries()].map(([p, n]) => [p, n.type, n.mode]), [["tmp", "dir", 0o1777]]);
});

test("a generated file keeps its host file across builds, and is repaired when it is not what its name says", async (t) => {
  const dir = await tmpDir(t);
  const place = () => builtinSources("fakeNss", { generated: new GeneratedFiles(join(dir, "gen")) });
  const first = (await place()).sources[0]!.from;
  const ino = lstatSync(first).ino;
  assert.equal((await place()).sources[0]!.from, first, "the same path, named by content");
  assert.equal(lstatSync(first).ino, ino, "not written again (the cache key's fingerprint stays)");
  writeFileSync(first, "root:x:0:0:tampered\n");
  assert.equal((await place()).sources[0]!.from, first);
  assert.match(readFileSync(first, "utf8"), /^nobody:/m, "rewritten");
  const tmpSource = (await builtinSources("tmp", { generated: new GeneratedFiles(join(dir, "gen")) })).sources[0]!.from;
  writeFileSync(join(tmpSource, "left-behind"), "x");
  await builtinSources("tmp", { generated: new GeneratedFiles(join(dir, "gen")) });
  assert.deepEqual(readdirSync(tmpSource), [], "a /tmp that something wrote into is made empty again");
  assert.ok(!readdirSync(join(dir, "gen")).some((n) => n.startsWith(".tmp-")), "no temporary left");
});

test("caCertificates: the host's bundle at /etc/ssl/certs/ca-certificates.crt, linked from the other usual paths", async (t) => {
  const dir = await tmpDir(t);
  mkdirSync(join(dir, "host"));
  writeFileSync(join(dir, "host", "bundle.pem"), "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", { mode: 0o600 });
  const generated = new GeneratedFiles(join(dir, "gen"));
  const { sources } = await builtinSources("caCertificates", { generated, caBundles: [join(dir, "host", "missing.pem"), join(dir, "host", "bundle.pem")] });
  const bundle = sources.find((s) => s.to === IMAGE_CA_BUNDLE)!;
  assert.equal(readFileSync(bundle.from, "utf8"), readFileSync(join(dir, "host", "bundle.pem"), "utf8"));
  assert.equal(statSync(bundle.from).mode & 0o777, 0o644, "readable by every user of the image, whatever the host's mode");
  const tree = await walkSources(sources);
  for (const link of ["etc/ssl/certs/ca-bundle.crt", "etc/ssl/cert.pem", "etc/pki/tls/certs/ca-bundle.crt"]) {
    const node = tree.get(link);
    assert.equal(node?.type, "symlink", link);
    // Each link, resolved inside the image, reaches the bundle.
    const target = node!.linkname!.startsWith("/") ? node!.linkname!.slice(1) : `${link.slice(0, link.lastIndexOf("/"))}/${node!.linkname}`;
    assert.equal(target, "etc/ssl/certs/ca-certificates.crt", link);
  }
  await assert.rejects(builtinSources("caCertificates", { generated, caBundles: [join(dir, "none-1"), join(dir, "none-2")] }),
    (err: Error) => err instanceof GantryError && err.code === "SOURCE_UNREADABLE" && err.message.includes(join(dir, "none-2")) && /install the host's ca-certificates/.test(err.message));
});

test("binSh and usrBinEnv are the closures of the host's /bin/sh and /usr/bin/env", async (t) => {
  const generated = new GeneratedFiles(join(await tmpDir(t), "gen"));
  const sh = await builtinSources("binSh", { generated });
  assert.deepEqual(sh.sources, resolveClosure(["/bin/sh"]).paths.map((p) => ({ from: p, to: p })));
  assert.ok(sh.sources.some((s) => s.to === "/bin/sh" || s.to === "/bin"), "/bin/sh resolves in the image");
  const env = await builtinSources("usrBinEnv", { generated });
  assert.ok(env.sources.some((s) => s.to === "/usr/bin/env"));
  assert.ok(env.sources.some((s) => /\/libc\.so\.6$/.test(s.to)), "with its libraries");
});

test("a plan's closureOf and builtin entries expand, in place, into single-path sources; other entries stay", async (t) => {
  const dir = await tmpDir(t);
  const spec = validateSpec({ name: "a", copyToRoot: ["./root", { closureOf: ["/bin/sh"] }, { builtin: "tmp" }, { from: "app", to: "/app" }] }, "s");
  const plan = planBuild(spec, "/specs", {});
  assert.deepEqual(plan.layers[0]!.sources, [{ from: "/specs/root", to: "/" }, { closureOf: ["/bin/sh"] }, { builtin: "tmp" }, { from: "/specs/app", to: "/app" }], "planning does no I/O");
  const expanded = await expandSources(plan, { generated: new GeneratedFiles(join(dir, "gen")) });
  const sources = expanded.plan.layers[0]!.sources;
  assert.deepEqual(sources[0], { from: "/specs/root", to: "/" });
  assert.deepEqual(sources[sources.length - 1], { from: "/specs/app", to: "/app" });
  const shell = resolveClosure(["/bin/sh"]).paths;
  assert.deepEqual(sources.slice(1, 1 + shell.length), shell.map((p) => ({ from: p, to: p })));
  assert.equal(sources[1 + shell.length]!.to, "/tmp");
  assert.deepEqual(expanded.programs.map((p) => p.path), ["/bin/sh"]);
});

test("a closure for another machine than the image's is refused before any layer is made", () => {
  const amd64 = { path: "/usr/bin/node", goArch: "amd64", description: "x86-64 (64-bit, little-endian)" };
  assert.doesNotThrow(() => checkClosureArchitecture([amd64], "amd64"));
  assert.throws(() => checkClosureArchitecture([amd64], "arm64"), (err: Error) => err instanceof GantryError && err.code === "SPEC_INVALID"
    && /the closureOf program \/usr\/bin\/node is for x86-64 .* and the image is for arm64/.test(err.message));
  assert.doesNotThrow(() => checkClosureArchitecture([{ path: "/x", goArch: "386", description: "i386" }], "amd64"), "amd64 runs i386 programs");
  assert.doesNotThrow(() => checkClosureArchitecture([{ path: "/x", goArch: undefined, description: "machine 9999" }], "amd64"), "an unknown machine is not judged");
});
