/**
 * The closure of host programs (src/builder/closure/resolve.ts) against the loader
 * itself: with LD_TRACE_LOADED_OBJECTS=1 glibc's ld.so maps a program's libraries and
 * lists them without running it, so the closure must hold exactly the program and those
 * files (compared by real path), plus the links on the paths the loader opens, and no
 * other link. Programs built here with gcc cover $ORIGIN, RPATH inherited by a library,
 * RUNPATH not inherited, a library of another class passed over, a missing library, and
 * the environment left out; scripts bring their interpreters.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, lstatSync, mkdirSync, realpathSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { linkChain } from "../../src/builder/closure/link-chain.js";
import { resolveClosure, type Closure } from "../../src/builder/closure/resolve.js";
import { expandSearchPath } from "../../src/builder/closure/search-path.js";
import { loaderTarget } from "../../src/builder/closure/target.js";
import { DF_1_NODEFLIB } from "../../src/builder/closure/elf.js";
import { GantryError } from "../../src/model/errors.js";
import { makeElf } from "../helpers/elf-maker.js";
import { loaderTrace, tracedPaths, tracedRealFiles, type LoaderTrace } from "../helpers/loader-trace.js";
import { have } from "../helpers/tools.js";
import { tmpDir } from "../helpers/tmp.js";

function realFiles(closure: Closure): string[] {
  return closure.paths.filter((p) => !lstatSync(p).isSymbolicLink()).sort();
}

function assertClosureIsTrace(program: string, closure: Closure, trace: LoaderTrace = loaderTrace(program)): void {
  assert.ok(trace.libraries.size > 0, `the loader lists libraries for ${program}`);
  assert.ok(![...trace.libraries.values()].includes(undefined), `the loader finds every library of ${program}`);
  assert.deepEqual(realFiles(closure), tracedRealFiles(program, trace), `the files of ${program}'s closure are what the loader maps`);
  assert.deepEqual(closure.paths, tracedPaths(program, trace), `the links of ${program}'s closure are exactly those on the paths the loader opens`);
}

const HOST_PROGRAMS = ["/usr/bin/node", "/bin/ls", "/usr/bin/perl"].filter((p) => existsSync(p));

for (const program of HOST_PROGRAMS) {
  test(`the closure of ${program} is the program and what the loader maps for it, by real path`, () => {
    const closure = resolveClosure([program]);
    assertClosureIsTrace(program, closure);
    assert.equal(closure.programs[0]?.path, program);
    if (process.arch === "x64") assert.equal(closure.programs[0]?.goArch, "amd64");
  });
}

test("with no ld.so.cache the default directories find the same files (this host's libraries are all in them)", () => {
  const program = HOST_PROGRAMS.find((p) => p !== "/usr/bin/node") ?? HOST_PROGRAMS[0];
  if (program === undefined) return;
  assert.deepEqual(realFiles(resolveClosure([program], { ldCache: [] })), realFiles(resolveClosure([program])));
});

/** gcc, or a skip. */
function cc(t: TestContext, args: string[]): boolean {
  if (!have("gcc")) {
    t.skip("gcc is not installed");
    return false;
  }
  execFileSync("gcc", args, { stdio: ["ignore", "ignore", "pipe"] });
  return true;
}

function source(dir: string, name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

test("$ORIGIN in a RUNPATH is the directory of the program's real path, through a link to its directory or to the file", async (t) => {
  const dir = await tmpDir(t);
  mkdirSync(join(dir, "app", "bin"), { recursive: true });
  mkdirSync(join(dir, "app", "lib"));
  const lib = source(dir, "greet.c", "int greet(void) { return 42; }\n");
  const main = source(dir, "main.c", "int greet(void);\nint main(void) { return greet() == 42 ? 0 : 1; }\n");
  if (!cc(t, ["-shared", "-fPIC", "-Wl,-soname,libgreet.so.1", "-o", join(dir, "app", "lib", "libgreet.so.1"), lib])) return;
  cc(t, ["-o", join(dir, "app", "bin", "prog"), main, join(dir, "app", "lib", "libgreet.so.1"), "-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN/../lib"]);
  symlinkSync("app", join(dir, "current"));
  const program = join(dir, "current", "bin", "prog");
  const closure = resolveClosure([program]);
  assertClosureIsTrace(program, closure);
  assert.ok(closure.paths.includes(join(dir, "current")), "the link the program was named through");
  assert.ok(closure.paths.includes(join(dir, "app", "lib", "libgreet.so.1")), "the library found through $ORIGIN");
  // Named through a link to the file itself, elsewhere: $ORIGIN is still where the file really is.
  mkdirSync(join(dir, "links"));
  symlinkSync("../app/bin/prog", join(dir, "links", "prog"));
  const viaLink = resolveClosure([join(dir, "links", "prog")]);
  assertClosureIsTrace(join(dir, "links", "prog"), viaLink);
  assert.ok(viaLink.paths.includes(join(dir, "app", "lib", "libgreet.so.1")));
});

test("a library's $ORIGIN is the directory it was opened from, not where a link to it leads", async (t) => {
  const dir = await tmpDir(t);
  for (const d of ["x", "y/deps", "x/deps"]) mkdirSync(join(dir, d), { recursive: true });
  const b = source(dir, "b.c", "int b(void) { return 2; }\n");
  const a = source(dir, "a.c", "int b(void);\nint a(void) { return b(); }\n");
  const main = source(dir, "main.c", "int a(void);\nint main(void) { return a() == 2 ? 0 : 1; }\n");
  if (!cc(t, ["-shared", "-fPIC", "-Wl,-soname,libb.so", "-o", join(dir, "y", "deps", "libb.so"), b])) return;
  cc(t, ["-shared", "-fPIC", "-Wl,-soname,liba.so", "-o", join(dir, "y", "liba.so"), a, join(dir, "y", "deps", "libb.so"), "-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN/deps"]);
  symlinkSync("../y/liba.so", join(dir, "x", "liba.so"));
  const program = join(dir, "prog");
  cc(t, ["-o", program, main, `-L${join(dir, "x")}`, "-l:liba.so", `-Wl,-rpath-link,${join(dir, "y", "deps")}`, "-Wl,--enable-new-dtags", `-Wl,-rpath,${join(dir, "x")}`]);
  // libb.so is beside the real liba.so only: the loader, looking in x/deps, does not find it.
  assert.equal(loaderTrace(program).libraries.get("libb.so"), undefined);
  assert.throws(() => resolveClosure([program]), /the library libb\.so that \S+\/x\/liba\.so .* needs is not found where the loader looks \(\S+\/x\/deps, /);
  // Beside the link, it is found there.
  symlinkSync("../../y/deps/libb.so", join(dir, "x", "deps", "libb.so"));
  const closure = resolveClosure([program]);
  assertClosureIsTrace(program, closure);
  assert.ok(closure.paths.includes(join(dir, "x", "deps", "libb.so")));
});

/** main -> libouter (in dirA) -> libinner (in dirB), main's search path naming both directories. */
async function twoLevels(t: TestContext, tags: "old" | "new"): Promise<string | undefined> {
  const dir = await tmpDir(t);
  for (const d of ["a", "b"]) mkdirSync(join(dir, d));
  const inner = source(dir, "inner.c", "int inner(void) { return 1; }\n");
  const outer = source(dir, "outer.c", "int inner(void);\nint outer(void) { return inner(); }\n");
  const main = source(dir, "main.c", "int outer(void);\nint main(void) { return outer() == 1 ? 0 : 1; }\n");
  if (!cc(t, ["-shared", "-fPIC", "-Wl,-soname,libinner.so", "-o", join(dir, "b", "libinner.so"), inner])) return undefined;
  cc(t, ["-shared", "-fPIC", "-Wl,-soname,libouter.so", "-o", join(dir, "a", "libouter.so"), outer, join(dir, "b", "libinner.so")]);
  const program = join(dir, `prog-${tags}`);
  cc(t, ["-o", program, main, join(dir, "a", "libouter.so"), `-Wl,-rpath-link,${join(dir, "b")}`,
    tags === "old" ? "-Wl,--disable-new-dtags" : "-Wl,--enable-new-dtags", `-Wl,-rpath,${join(dir, "a")}:${join(dir, "b")}`]);
  return program;
}

test("a program's RPATH serves its libraries' needs too, as the loader's chain of RPATHs does", async (t) => {
  const program = await twoLevels(t, "old");
  if (program === undefined) return;
  const closure = resolveClosure([program]);
  assertClosureIsTrace(program, closure);
  assert.ok(closure.paths.some((p) => p.endsWith("/b/libinner.so")));
});

test("a program's RUNPATH serves only its own needs: a library's need it does not cover is missing, as for the loader", async (t) => {
  const program = await twoLevels(t, "new");
  if (program === undefined) return;
  assert.equal(loaderTrace(program).libraries.get("libinner.so"), undefined, "the loader does not find it either");
  assert.ok(loaderTrace(program).libraries.has("libinner.so"));
  assert.throws(() => resolveClosure([program]), (err: Error) => err instanceof GantryError && err.code === "SOURCE_UNREADABLE"
    && /the library libinner\.so that \S+\/a\/libouter\.so \(loaded for \S+prog-new\) needs is not found/.test(err.message)
    && !err.message.includes("\n"));
});

test("the RPATH of a library serves the libraries it brings in, further down the chain", async (t) => {
  const dir = await tmpDir(t);
  for (const d of ["a", "b", "c"]) mkdirSync(join(dir, d));
  const c = source(dir, "c.c", "int c(void) { return 3; }\n");
  const b = source(dir, "b.c", "int c(void);\nint b(void) { return c(); }\n");
  const a = source(dir, "a.c", "int b(void);\nint a(void) { return b(); }\n");
  const main = source(dir, "main.c", "int a(void);\nint main(void) { return a() == 3 ? 0 : 1; }\n");
  if (!cc(t, ["-shared", "-fPIC", "-Wl,-soname,libc3.so", "-o", join(dir, "c", "libc3.so"), c])) return;
  cc(t, ["-shared", "-fPIC", "-Wl,-soname,libb3.so", "-o", join(dir, "b", "libb3.so"), b, join(dir, "c", "libc3.so")]);
  // Only libA's RPATH names c/: libB (loaded through it) finds libC there, as the loader walks up the chain of loaders.
  cc(t, ["-shared", "-fPIC", "-Wl,-soname,liba3.so", "-o", join(dir, "a", "liba3.so"), a, join(dir, "b", "libb3.so"),
    `-Wl,-rpath-link,${join(dir, "c")}`, "-Wl,--disable-new-dtags", `-Wl,-rpath,${join(dir, "b")}:${join(dir, "c")}`]);
  const program = join(dir, "prog");
  cc(t, ["-o", program, main, join(dir, "a", "liba3.so"), `-Wl,-rpath-link,${join(dir, "b")}:${join(dir, "c")}`, "-Wl,--disable-new-dtags", `-Wl,-rpath,${join(dir, "a")}`]);
  const closure = resolveClosure([program]);
  assertClosureIsTrace(program, closure);
  assert.ok(closure.paths.includes(join(dir, "c", "libc3.so")));
});

test("a name already loaded, by its soname too, is not searched again, as the loader reuses the object", async (t) => {
  const dir = await tmpDir(t);
  for (const d of ["first", "other", "link-only"]) mkdirSync(join(dir, d));
  const x = source(dir, "x.c", "int x(void) { return 1; }\n");
  const y = source(dir, "y.c", "int x(void);\nint y(void) { return x(); }\n");
  const main = source(dir, "main.c", "int x(void);\nint y(void);\nint main(void) { return x() + y() == 2 ? 0 : 1; }\n");
  // The program needs "libxalias.so" (linked against a copy with no soname); the file it loads by that name says
  // its soname is libx.so.1. liby needs libx.so.1, and its RUNPATH leads to another file of that name, in other/.
  if (!cc(t, ["-shared", "-fPIC", "-o", join(dir, "link-only", "libxalias.so"), x])) return;
  cc(t, ["-shared", "-fPIC", "-Wl,-soname,libx.so.1", "-o", join(dir, "first", "libxalias.so"), x]);
  cc(t, ["-shared", "-fPIC", "-Wl,-soname,libx.so.1", "-o", join(dir, "other", "libx.so.1"), x]);
  cc(t, ["-shared", "-fPIC", "-Wl,-soname,liby.so", "-o", join(dir, "first", "liby.so"), y, join(dir, "other", "libx.so.1"),
    "-Wl,--enable-new-dtags", `-Wl,-rpath,${join(dir, "other")}`]);
  const program = join(dir, "prog");
  cc(t, ["-o", program, main, `-L${join(dir, "link-only")}`, "-l:libxalias.so", join(dir, "first", "liby.so"), `-Wl,-rpath-link,${join(dir, "other")}`,
    "-Wl,--enable-new-dtags", `-Wl,-rpath,${join(dir, "first")}`]);
  const trace = loaderTrace(program);
  assert.equal(trace.libraries.get("libxalias.so"), join(dir, "first", "libxalias.so"));
  assert.equal(trace.libraries.has("libx.so.1"), false, "the loader lists the soname's object once, by the name it was loaded by");
  const closure = resolveClosure([program]);
  assertClosureIsTrace(program, closure, trace);
  assert.ok(!closure.paths.includes(join(dir, "other", "libx.so.1")), "the other libx.so.1 is not loaded");
});

test("a missing library is one error naming it and the program, whatever LD_LIBRARY_PATH says", async (t) => {
  const dir = await tmpDir(t);
  mkdirSync(join(dir, "hidden"));
  const lib = source(dir, "gone.c", "int gone(void) { return 0; }\n");
  const main = source(dir, "main.c", "int gone(void);\nint main(void) { return gone(); }\n");
  if (!cc(t, ["-shared", "-fPIC", "-Wl,-soname,libgone.so.1", "-o", join(dir, "hidden", "libgone.so.1"), lib])) return;
  const program = join(dir, "needs-gone");
  cc(t, ["-o", program, main, join(dir, "hidden", "libgone.so.1")]);
  assert.equal(loaderTrace(program).libraries.get("libgone.so.1"), undefined, "the loader does not find it");
  assert.ok(loaderTrace(program, { LD_LIBRARY_PATH: join(dir, "hidden") }).libraries.get("libgone.so.1"), "LD_LIBRARY_PATH would");
  const saved = process.env["LD_LIBRARY_PATH"];
  process.env["LD_LIBRARY_PATH"] = join(dir, "hidden");
  try {
    assert.throws(() => resolveClosure([program]), (err: Error) => err instanceof GantryError && err.code === "SOURCE_UNREADABLE"
      && err.message.startsWith(`the library libgone.so.1 that ${program} needs is not found where the loader looks (/etc/ld.so.cache, `)
      && !err.message.includes("\n"));
  } finally {
    if (saved === undefined) delete process.env["LD_LIBRARY_PATH"];
    else process.env["LD_LIBRARY_PATH"] = saved;
  }
  // Through a cache entry in a directory the image's loader will not search, it is found, and the build is told.
  const found = resolveClosure([program], { ldCache: [{ name: "libgone.so.1", path: join(dir, "hidden", "libgone.so.1"), flags: 0x303, hwcap: 0n }] });
  assert.ok(found.paths.includes(join(dir, "hidden", "libgone.so.1")));
  assert.equal(found.notes.length, 1);
  assert.match(found.notes[0]!, /libgone\.so\.1 .* is found through \/etc\/ld\.so\.cache in \S+\/hidden, which the loader in the image will not search .* LD_LIBRARY_PATH=/);
});

test("a library of another class in an earlier directory is passed over, as the loader passes it", async (t) => {
  const dir = await tmpDir(t);
  for (const d of ["first", "second"]) mkdirSync(join(dir, d));
  const lib = source(dir, "greet.c", "int greet(void) { return 42; }\n");
  const main = source(dir, "main.c", "int greet(void);\nint main(void) { return greet() == 42 ? 0 : 1; }\n");
  if (!cc(t, ["-shared", "-fPIC", "-Wl,-soname,libgreet.so", "-o", join(dir, "second", "libgreet.so"), lib])) return;
  writeFileSync(join(dir, "first", "libgreet.so"), makeElf({ is64: false, little: false, machine: 20, soname: "libgreet.so" }));
  const program = join(dir, "prog");
  cc(t, ["-o", program, main, join(dir, "second", "libgreet.so"), "-Wl,--enable-new-dtags", `-Wl,-rpath,${join(dir, "first")}:${join(dir, "second")}`]);
  const closure = resolveClosure([program]);
  assertClosureIsTrace(program, closure);
  assert.ok(!closure.paths.includes(join(dir, "first", "libgreet.so")));
});

test("a library marked DF_1_NODEFLIB has its needs looked up in its own paths only", async (t) => {
  const dir = await tmpDir(t);
  if (process.arch !== "x64") return t.skip("the hand-made library is x86-64");
  mkdirSync(join(dir, "lib"));
  // Hand-made (GNU ld ignores -z nodeflib here): it needs libm.so.6, which the cache and the default directories hold.
  writeFileSync(join(dir, "lib", "libnd.so"), makeElf({ is64: true, little: true, machine: 62, needed: ["libm.so.6"], soname: "libnd.so", flags1: DF_1_NODEFLIB }));
  writeFileSync(join(dir, "lib", "libplain.so"), makeElf({ is64: true, little: true, machine: 62, needed: ["libm.so.6"], soname: "libplain.so" }));
  const prog = (name: string, lib: string) => {
    const path = join(dir, name);
    writeFileSync(path, makeElf({ is64: true, little: true, machine: 62, needed: [lib], runpath: join(dir, "lib") }));
    chmodSync(path, 0o755);
    return path;
  };
  assert.ok(resolveClosure([prog("plain", "libplain.so")]).paths.some((p) => p.endsWith("/libm.so.6")), "without the flag libm is found");
  assert.throws(() => resolveClosure([prog("nodeflib", "libnd.so")]), (err: Error) => /the library libm\.so\.6 that \S+libnd\.so \(loaded for \S+nodeflib\) needs is not found: \S+libnd\.so is marked DF_1_NODEFLIB, so the loader looks only in its RPATH or RUNPATH, and it has neither/.test(err.message));
});

test("a script brings its interpreter's closure, through nested interpreters; anything else is refused", async (t) => {
  const dir = await tmpDir(t);
  const sh = join(dir, "inner.sh");
  writeFileSync(sh, "#!/bin/sh -e\necho inner\n");
  const nested = join(dir, "outer");
  writeFileSync(nested, `#!${sh}\n`);
  const shell = resolveClosure(["/bin/sh"]);
  const script = resolveClosure([sh]);
  assert.deepEqual(script.paths, [...new Set([...shell.paths, sh])].sort());
  assert.deepEqual(resolveClosure([nested]).paths, [...new Set([...script.paths, nested])].sort());
  assert.deepEqual(script.programs.map((p) => p.path), ["/bin/sh"], "the interpreter stands for the script");

  writeFileSync(join(dir, "relative"), "#!sh\n");
  assert.throws(() => resolveClosure([join(dir, "relative")]), /names the interpreter "sh", which is not an absolute path/);
  writeFileSync(join(dir, "data.txt"), "just text\n");
  assert.throws(() => resolveClosure([join(dir, "data.txt")]), (err: Error) => err instanceof GantryError && err.code === "SPEC_INVALID" && /is neither an ELF program nor a script starting with "#!"/.test(err.message));
  assert.throws(() => resolveClosure([join(dir, "missing")]), (err: Error) => err instanceof GantryError && err.code === "SOURCE_UNREADABLE" && err.message.includes(join(dir, "missing")));
  assert.throws(() => resolveClosure(["bin/sh"]), /not an absolute host path/);
});

test("a link chain is the kernel's lookup: relative and absolute links, .. after a link, and loops", async (t) => {
  const dir = realpathSync(await tmpDir(t));
  mkdirSync(join(dir, "real", "deep"), { recursive: true });
  writeFileSync(join(dir, "real", "deep", "file"), "x");
  symlinkSync("real", join(dir, "short")); // relative
  symlinkSync(join(dir, "short", "deep", "file"), join(dir, "real", "abs")); // absolute, through another link
  symlinkSync("deep/../deep", join(dir, "real", "updown")); // .. inside a link target
  assert.deepEqual(linkChain(join(dir, "short", "abs"), "x"), {
    links: [join(dir, "short"), join(dir, "real", "abs"), join(dir, "short")],
    real: join(dir, "real", "deep", "file"),
  });
  assert.deepEqual(linkChain(join(dir, "short", "updown", "file"), "x").real, join(dir, "real", "deep", "file"));
  // .. applies to where a link led, not to the link's own directory.
  symlinkSync(join(dir, "real", "deep"), join(dir, "to-deep"));
  assert.equal(linkChain(`${join(dir, "to-deep")}/../deep/file`, "x").real, join(dir, "real", "deep", "file"));
  symlinkSync("loop-b", join(dir, "loop-a"));
  symlinkSync("loop-a", join(dir, "loop-b"));
  assert.throws(() => linkChain(join(dir, "loop-a"), "the program"), /the program \S+loop-a is a loop of symbolic links/);
  assert.throws(() => linkChain(join(dir, "short", "nope", "x"), "the program"), /the program \S+short\/nope\/x cannot be looked up: \S+real\/nope does not exist/);
});

test("search paths expand $ORIGIN, $LIB and $PLATFORM as glibc does, and leave out what depends on the running process", () => {
  const target = { ...loaderTarget({ elfClass: 2, data: 1, machine: 62, flags: 0 }), lib: "lib/x86_64-linux-gnu" };
  const out = expandSearchPath("$ORIGIN/../lib:${ORIGIN}/x::/a/$LIB:/b/${PLATFORM}/c:rel/dir:/o/$ORIGINX:/p/$ORIGIN.d", "/opt/app/bin", target);
  assert.deepEqual(out.dirs, ["/opt/app/bin/../lib", "/opt/app/bin/x", "/a/lib/x86_64-linux-gnu", "/b/x86_64/c", "/o/$ORIGINX", "/p/$ORIGIN.d"]);
  assert.equal(out.skipped.length, 2);
  assert.match(out.skipped[0]!, /an empty element/);
  assert.match(out.skipped[1]!, /rel\/dir \(a relative directory/);
  const unknownPlatform = expandSearchPath("/x/$PLATFORM", "/", { ...target, platform: undefined });
  assert.deepEqual(unknownPlatform.dirs, []);
  assert.match(unknownPlatform.skipped[0]!, /\$PLATFORM, which depends on the CPU/);
});
