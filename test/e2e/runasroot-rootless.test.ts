/**
 * gantry as an ordinary user. The test (as root) makes users with useradd, one with a
 * range in /etc/subuid and /etc/subgid and one without, and runs the CLI as them with
 * setpriv (test/helpers/ordinary-user.ts); they are removed afterwards.
 *
 * runAsRoot then runs in a user namespace. On a base whose paths belong to many owners
 * (test/fixtures/bases/owners.sh), the new layer must be the one root builds from the same
 * spec: GNU tar's view of both, entry by entry (name, type, mode, uid, gid, link target,
 * content), then the diff_ids. The script must see the image's owners and its chowns,
 * deletions (whiteouts, an opaque directory) and hard links must come out as under root;
 * an id beyond the range and a device node the user cannot make are left as the image has
 * them. Without subordinate ids one progress line says what that limits, the owners of the
 * image are still kept, and a chown to another id fails in one line that says why;
 * GANTRY_RUNTIME=runc is refused in one line; Ctrl-C during the script leaves neither files
 * (those of subordinate ids included) nor processes. Everything else (build, inspect,
 * export to a directory, copy, diff) works as that user with the same results as root's.
 */
import assert from "node:assert/strict";
import { copyFile, mkdir, mkdtemp, readFile, readdir, writeFile, lstat, readlink } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { archiveManifest, extractMember, fileInTopLayer, listTar, type TarEntry } from "../helpers/archive.js";
import { runFixtureScript } from "../helpers/bases.js";
import { runGantry } from "../helpers/gantry.js";
import { openToAll, ordinaryUsers, type OrdinaryUser } from "../helpers/ordinary-user.js";
import { fileTmpDir } from "../helpers/tmp.js";
import { peerTest, requireTools, run, skopeoJson } from "../helpers/tools.js";

const shared = fileTmpDir("gantry-rootless-");
const users = ordinaryUsers();
/** 65536 ids: the owners.sh base's uid 100000 lies beyond them. */
const RANGE = "500000000-500065535";
const withRange = (): Promise<OrdinaryUser> => users.get("gantry-rootless", { subordinate: RANGE });
const withoutRange = (): Promise<OrdinaryUser> => users.get("gantry-rootless-plain");

let fixtures: Promise<{ owners: string; busybox: string }> | undefined;
/** The two bases, made once (as root) and readable by everyone. */
function bases(): Promise<{ owners: string; busybox: string }> {
  fixtures ??= (async () => {
    const dir = join(await shared(), "bases");
    await runFixtureScript("owners.sh", [join(dir, "owners")]);
    await runFixtureScript("umoci-busybox.sh", [join(dir, "busybox")]);
    await openToAll(await shared());
    return { owners: join(dir, "owners", "owners.tar"), busybox: join(dir, "busybox", "busybox.tar") };
  })();
  return fixtures;
}

/** A directory for one test that `user` owns (its outputs) and root can write to as well. */
async function workDir(user: OrdinaryUser, name: string): Promise<string> {
  const dir = join(await shared(), name);
  await mkdir(dir);
  await user.own(dir);
  return dir;
}

/** One entry of a layer as GNU tar sees it, with the sha256 of a regular file's bytes. */
interface EntryView extends TarEntry { sha256?: string }

/** The top layer of a docker-archive, entry by entry, contents hashed by GNU tar's --to-command. */
async function topLayer(archive: string): Promise<{ entries: EntryView[]; diffId: string }> {
  const scratch = await mkdtemp(join(tmpdir(), "gantry-rootless-layer-"));
  try {
    const [manifest] = await archiveManifest(archive);
    const top = manifest?.Layers.at(-1);
    assert.ok(top !== undefined, `${archive} has a layer`);
    const blob = join(scratch, "layer");
    await extractMember(archive, top, blob);
    const hashes = new Map<string, string>();
    const hashing = 'printf "%s %s\\n" "$(sha256sum | cut -d" " -f1)" "$TAR_FILENAME"';
    const listing = (await run("tar", ["-xf", blob, "--to-command", hashing], { cwd: scratch })).stdout.toString();
    for (const line of listing.split("\n").filter(Boolean)) {
      const at = line.indexOf(" ");
      hashes.set(line.slice(at + 1).replace(/^\.\//, ""), line.slice(0, at));
    }
    const entries = (await listTar(blob)).map((e): EntryView => {
      const sha256 = hashes.get(e.path);
      return sha256 === undefined ? e : { ...e, sha256 };
    });
    const config = JSON.parse((await run("tar", ["-xOf", archive, manifest?.Config ?? ""])).stdout.toString()) as { rootfs: { diff_ids: string[] } };
    return { entries, diffId: config.rootfs.diff_ids.at(-1) ?? "" };
  } finally {
    await run("rm", ["-rf", scratch]);
  }
}

/** Asserts two layers hold the same entries, one by one, then the same bytes. */
function assertSameLayer(ours: { entries: EntryView[]; diffId: string }, roots: { entries: EntryView[]; diffId: string }): void {
  assert.deepEqual(ours.entries.map((e) => e.path), roots.entries.map((e) => e.path), "the same entries, in the same order");
  for (const [i, want] of roots.entries.entries()) {
    assert.deepEqual(ours.entries[i], want, `entry ${want.path}: type, mode, uid, gid, link target and content as under root`);
  }
  assert.equal(ours.diffId, roots.diffId, "the same layer, byte for byte");
}

/** The same spec built as root, for comparison. */
async function buildAsRoot(dir: string, spec: string, out: string): Promise<void> {
  const r = await runGantry(["build", join(dir, spec), "-o", join(dir, out)], { cwd: dir });
  assert.equal(r.code, 0, `the build as root: ${r.stderr}`);
}

/** Temp entries an ordinary user left in the system's temp directory (staging roots, agent jobs). */
async function leftoversOf(user: OrdinaryUser): Promise<string[]> {
  const out: string[] = [];
  for (const name of await readdir(tmpdir())) {
    const st = await lstat(join(tmpdir(), name)).catch(() => undefined);
    if (st !== undefined && (st.uid === user.uid || st.uid >= 500000000)) out.push(name);
  }
  return out;
}

const RANGED_SCRIPT = [
  "set -e",
  // What the script sees of the image's owners (and of the copyToRoot files).
  "stat -c '%u:%g %a %F %n' /home/app /home/app/secret /home/app/notes /home/app/link /home/fifo /srv/www/index.html"
    + " /usr/bin/setgid-tool /usr/bin/setuid-tool /etc/unreadable /etc/mode0-1000 /var/spool/sticky/mine /ro-dir"
    + " /ro-dir/laid.txt /nobody-dir /app/hello.txt /app > /etc/seen.txt",
  "rm /home/app/secret",
  "echo more >> /home/app/notes",
  "echo edited >> /srv/www/index.html",
  "echo far >> /opt/far/file",
  "rm -r /srv/old",
  "rm /opt/keep/data",
  "echo refilled > /opt/keep/new",
  "echo new > /etc/new.txt",
  "chown 1000:1000 /etc/new.txt",
  "mkdir /data",
  "echo d > /data/f",
  "ln /data/f /data/f-hard",
  "mkfifo /data/pipe",
  "chown -R 1000:1000 /data",
  "chmod 0700 /data",
  "chmod 0600 /data/f",
  "echo s > /usr/bin/new-setuid",
  "chown 1000:1000 /usr/bin/new-setuid",
  "chmod 4755 /usr/bin/new-setuid",
  "ln -s /etc/new.txt /etc/new-link",
  "chown -h 33:33 /etc/new-link",
  "chgrp 42 /etc/unreadable",
  "echo theirs > /var/spool/sticky/theirs",
  "chown 1000:1000 /var/spool/sticky/theirs",
  "echo more >> /ro-dir/f",
  "echo x > /dev/null",
].join("\n");

const SEEN = [
  "1000:1000 700 directory /home/app",
  "1000:1000 600 regular file /home/app/secret",
  "1000:1000 644 regular file /home/app/notes",
  "1000:1000 777 symbolic link /home/app/link",
  "1000:1000 644 fifo /home/fifo",
  "33:33 640 regular file /srv/www/index.html",
  "0:42 2755 regular file /usr/bin/setgid-tool",
  "1000:0 4755 regular file /usr/bin/setuid-tool",
  "0:0 0 regular file /etc/unreadable",
  "1000:1000 0 regular file /etc/mode0-1000",
  "1000:1000 644 regular file /var/spool/sticky/mine",
  "0:0 555 directory /ro-dir",
  "0:0 644 regular file /ro-dir/laid.txt",
  "65534:65534 755 directory /nobody-dir",
  "0:0 644 regular file /app/hello.txt",
  "0:0 755 directory /app",
  "",
].join("\n");

/** A spec on the owners base: /app from a directory, and a file laid into the base's read-only /ro-dir. */
async function writeOwnersSpec(dir: string, base: string, fields: Record<string, unknown>): Promise<void> {
  await mkdir(join(dir, "root", "app"), { recursive: true });
  await writeFile(join(dir, "root", "app", "hello.txt"), "hello\n", { mode: 0o644 });
  await writeFile(join(dir, "laid.txt"), "laid into a read-only directory\n", { mode: 0o644 });
  await writeFile(join(dir, "spec.json"), JSON.stringify({
    name: "gantry-test/rootless", tag: "1", fromImage: base,
    copyToRoot: ["./root", { from: "./laid.txt", to: "/ro-dir/laid.txt" }],
    created: "2024-01-02T03:04:05Z", mtime: "2023-06-07T08:09:10Z",
    ...fields,
  }));
  await openToAll(dir);
}

peerTest("runAsRoot as an ordinary user with subordinate ids gives root's layer: owners seen and set, whiteouts, hard links, setuid", async () => {
  requireTools("unshare", "newuidmap", "newgidmap");
  const user = await withRange();
  const { owners } = await bases();
  const dir = await workDir(user, "ranged");
  await writeOwnersSpec(dir, owners, { runAsRoot: RANGED_SCRIPT });

  const r = await user.gantry(["build", "spec.json", "-o", "user.tar"], { cwd: dir });
  assert.equal(r.code, 0, `the build as ${user.name}: ${r.stderr}`);
  assert.match(r.stderr, /runAsRoot as the ordinary user gantry-rootless: the script runs as root in a user namespace with uids 0-65536 and gids 0-65536/);
  assert.match(r.stderr, /1 device node\(s\) of the image \(\/lib\/dev-null\) cannot be made without root/);
  await buildAsRoot(dir, "spec.json", "root.tar");

  const ours = await topLayer(join(dir, "user.tar"));
  const roots = await topLayer(join(dir, "root.tar"));
  const byPath = new Map(ours.entries.map((e) => [e.path, e]));
  // What the rootless build must hold on its own, whatever root gives.
  assert.equal(byPath.get("etc/new.txt")?.uid, 1000, "a chown by the script");
  assert.equal(byPath.get("etc/new.txt")?.gid, 1000);
  assert.deepEqual([byPath.get("etc/new-link")?.uid, byPath.get("etc/new-link")?.linkTarget], [33, "/etc/new.txt"], "chown -h of a symlink");
  assert.equal(byPath.get("data/f-hard")?.type, "h", "a hard link the script made");
  assert.equal(byPath.get("usr/bin/new-setuid")?.mode, 0o4755, "setuid survives the script's chown then chmod");
  assert.equal(byPath.get("etc/unreadable")?.gid, 42, "chgrp by the script");
  assert.ok(byPath.has("home/app/.wh.secret"), "a deletion in a 0700 directory of uid 1000 is a whiteout");
  assert.ok(byPath.has("srv/.wh.old"), "a deleted directory of uid 33 is one whiteout");
  assert.ok(byPath.has("opt/keep/.wh..wh..opq"), "a directory emptied and refilled is opaque");
  assert.deepEqual([byPath.get("srv/www/index.html")?.uid, byPath.get("srv/www/index.html")?.mode], [33, 0o640], "an edited file keeps its owner and mode");
  assert.deepEqual([byPath.get("home/app/notes")?.uid, byPath.get("home/app/notes-hard")?.type], [1000, "h"], "an edited hard-linked file of uid 1000");
  assert.equal(byPath.get("opt/far/file")?.uid, 100000, "an id beyond the range keeps its value");
  assert.equal(byPath.has("home/app"), false, "an unchanged directory is not restated");
  assert.equal(byPath.has("lib/.wh.dev-null") || byPath.has("lib/dev-null"), false, "the device the user could not make is left alone");
  assert.equal(fileInTopLayer(join(dir, "user.tar"), "etc/seen.txt"), SEEN, "the script saw the image's owners");

  assertSameLayer(ours, roots);
  assert.deepEqual(await leftoversOf(user), [], "no staging root or agent job is left behind");
});

const PLAIN_SCRIPT = [
  "set -e",
  "rm /home/app/secret",
  "echo more >> /home/app/notes",
  "echo edited >> /srv/www/index.html",
  "chmod 0600 /srv/www/index.html",
  "echo far >> /opt/far/file",
  "rm -r /srv/old",
  "echo new > /etc/new.txt",
  "mkdir /data",
  "echo d > /data/f",
  "chmod 0700 /data",
  "echo more >> /var/spool/sticky/mine",
].join("\n");

peerTest("runAsRoot without subordinate ids: one line says only id 0 exists, and the image's owners are still kept (extraCommands too)", async () => {
  requireTools("unshare");
  const user = await withoutRange();
  const { owners } = await bases();
  const dir = await workDir(user, "plain");
  // copyToRoot owned by 1000 too, an id the namespace lacks; extraCommands after the script, in the same root.
  await writeOwnersSpec(dir, owners, {
    runAsRoot: PLAIN_SCRIPT, uid: 1000, gid: 1000,
    extraCommands: "mkdir opt/extra && echo e > opt/extra/f && chmod 1777 opt/extra && echo more >> home/app/notes",
  });

  const r = await user.gantry(["build", "spec.json", "-o", "user.tar"], { cwd: dir });
  assert.equal(r.code, 0, `the build as ${user.name}: ${r.stderr}`);
  const notes = r.stderr.split("\n").filter((line) => line.includes("only id 0 exists"));
  assert.deepEqual(notes, [
    "runAsRoot as the ordinary user gantry-rootless-plain: gantry-rootless-plain has no range in /etc/subuid or /etc/subgid, so the script runs as root in a user namespace where only id 0 exists; it sees files of the image owned by other ids as owned by 0 (the layer keeps their owners) and cannot chown to any other id",
  ]);
  await buildAsRoot(dir, "spec.json", "root.tar");

  const ours = await topLayer(join(dir, "user.tar"));
  const byPath = new Map(ours.entries.map((e) => [e.path, e]));
  assert.deepEqual([byPath.get("home/app/notes")?.uid, byPath.get("home/app/notes")?.gid], [1000, 1000], "an edited file of uid 1000 keeps it");
  assert.deepEqual([byPath.get("srv/www/index.html")?.uid, byPath.get("srv/www/index.html")?.mode], [33, 0o600], "a chmod keeps the owner");
  assert.equal(byPath.get("opt/far/file")?.uid, 100000);
  assert.equal(byPath.get("app/hello.txt")?.uid, 1000, "copyToRoot files get the spec's owner");
  assert.equal(byPath.get("etc/new.txt")?.uid, 0, "a file the script makes is root's");
  assert.ok(byPath.has("home/app/.wh.secret"));
  assert.equal(byPath.get("opt/extra")?.mode, 0o1777, "extraCommands ran in the same root");
  assert.equal(fileInTopLayer(join(dir, "user.tar"), "home/app/notes"), "notes\nmore\nmore\n", "extraCommands saw the script's changes");
  assertSameLayer(ours, await topLayer(join(dir, "root.tar")));
  assert.deepEqual(await leftoversOf(user), []);
});

peerTest("without subordinate ids a chown to another id fails the build in one line that says why; the script saw owner 0", async () => {
  requireTools("unshare");
  const user = await withoutRange();
  const { owners } = await bases();
  const dir = await workDir(user, "plain-chown");
  await writeOwnersSpec(dir, owners, { runAsRoot: "set -e\nstat -c '%u:%g %n' /home/app/notes\necho x > /etc/new.txt\nchown 1000:1000 /etc/new.txt" });
  const r = await user.gantry(["build", "spec.json", "-o", "user.tar", "--quiet"], { cwd: dir });
  assert.equal(r.code, 1);
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, r.stderr);
  assert.match(r.stderr, /^gantry: the runAsRoot script exited with status 1; its last output: 0:0 \/home\/app\/notes \| chown: \/etc\/new.txt: Invalid argument; note that only id 0 exists in its user namespace \(gantry-rootless-plain has no range in \/etc\/subuid or \/etc\/subgid\), so a chown to any other id fails there\n$/);
  await assert.rejects(lstat(join(dir, "user.tar")), /ENOENT/, "no output is written");
  assert.deepEqual(await leftoversOf(user), []);
});

peerTest("as an ordinary user GANTRY_RUNTIME=runc is refused in one line, leaving nothing behind", async () => {
  const user = await withoutRange();
  const { owners } = await bases();
  const dir = await workDir(user, "plain-runc");
  await writeOwnersSpec(dir, owners, { runAsRoot: "true" });
  const r = await user.gantry(["build", "spec.json", "-o", "user.tar", "--quiet"], { cwd: dir, env: { GANTRY_RUNTIME: "runc" } });
  assert.equal(r.code, 1);
  assert.equal(r.stderr, "gantry: runAsRoot as an ordinary user runs its script with unshare + chroot in a user namespace, so GANTRY_RUNTIME=runc needs gantry to run as root; unset it or set GANTRY_RUNTIME=unshare\n");
  assert.deepEqual(await leftoversOf(user), []);
});

peerTest("Ctrl-C during the script: the build stops, and no file of the user or of its subordinate ids is left", async () => {
  requireTools("unshare", "newuidmap", "newgidmap", "ps");
  const user = await withRange();
  const { owners } = await bases();
  const dir = await workDir(user, "ranged-interrupt");
  const script = "set -e\nmkdir /data\necho x > /data/f\nchown -R 1000:1000 /data\nchmod 0000 /data/f\nchmod 0700 /data\nsleep 120";
  await writeOwnersSpec(dir, owners, { runAsRoot: script });
  const child = user.spawnGantry(["build", "spec.json", "-o", "user.tar"], dir);
  let stderr = "";
  child.stderr.on("data", (c: Buffer) => { stderr += c.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  try {
    // The script is asleep once its 0700 directory of (subordinate) uid 1000 is in a staging root.
    const deadline = Date.now() + 60_000;
    while (!(await scriptIsAsleep())) {
      assert.ok(Date.now() < deadline, `the script never reached its sleep: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    child.kill("SIGINT");
    assert.equal(await exited, 1, stderr);
  } finally {
    child.kill("SIGKILL");
  }
  assert.match(stderr, /\ngantry: interrupted by SIGINT/);
  await assert.rejects(lstat(join(dir, "user.tar")), /ENOENT/);
  assert.deepEqual(await leftoversOf(user), [], "the staging root (subordinate-owned files included) is removed");
  // A killed process may stay a zombie for a moment, until the host's init reaps it.
  let alive = "";
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 100))) {
    alive = (await run("ps", ["-o", "pid=,stat=,args=", "-u", String(user.uid)], { allowFailure: true })).stdout.toString();
    if (alive === "") break;
  }
  assert.equal(alive, "", "no process of the user (agent, sandbox, script) is left");
});

/** Whether a staging root holds the interrupt test's /data, made by the script as uid 1000 inside (subordinate id 500000999). */
async function scriptIsAsleep(): Promise<boolean> {
  for (const name of await readdir(tmpdir())) {
    if (!name.startsWith("gantry-rootfs-")) continue;
    const data = await lstat(join(tmpdir(), name, "data")).catch(() => undefined);
    if (data !== undefined && data.uid === 500000999) return true;
  }
  return false;
}

/** Every path of an exported root: type, mode, content or link target (owners differ by design: the user cannot chown). */
async function exportedTree(root: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (rel: string): Promise<void> => {
    const abs = join(root, rel);
    const st = await lstat(abs);
    const what = st.isDirectory() ? "dir" : st.isSymbolicLink() ? `-> ${await readlink(abs)}` : st.isFile() ? (await readFile(abs)).toString("base64") : "other";
    out.push(`${rel} ${(st.mode & 0o7777).toString(8)} ${what}`);
    if (st.isDirectory()) for (const name of (await readdir(abs)).sort()) await visit(rel === "" ? name : `${rel}/${name}`);
  };
  await visit("");
  return out;
}

peerTest("everything else works as an ordinary user, with root's results: build, inspect, export to a directory, copy, diff", async () => {
  requireTools("skopeo");
  const user = await withoutRange();
  const { busybox } = await bases();
  const dir = await workDir(user, "commands");
  await mkdir(join(dir, "root", "app"), { recursive: true });
  await writeFile(join(dir, "root", "app", "hello.txt"), "hello\n");
  await writeFile(join(dir, "root", "app", "run.sh"), "#!/bin/sh\necho run\n", { mode: 0o755 });
  await writeFile(join(dir, "spec.json"), JSON.stringify({
    name: "gantry-test/plain", tag: "1", fromImage: busybox, copyToRoot: "./root", uid: 1000, gid: 1000,
    created: "2024-01-02T03:04:05Z", mtime: "2023-06-07T08:09:10Z", config: { Cmd: ["/app/run.sh"] },
  }));
  await openToAll(dir);
  const asUser = async (...args: string[]): Promise<Buffer> => {
    const r = await user.gantry([...args, "--quiet"], { cwd: dir });
    assert.equal(r.code, 0, `gantry ${args.join(" ")} as ${user.name}: ${r.stderr}`);
    return r.stdout;
  };
  const asRoot = async (...args: string[]): Promise<Buffer> => {
    const r = await runGantry([...args, "--quiet"], { cwd: dir });
    assert.equal(r.code, 0, `gantry ${args.join(" ")} as root: ${r.stderr}`);
    return r.stdout;
  };
  assert.notEqual((await user.run("id", ["-u"])).trim(), "0", "the user is not root");

  await asUser("build", "spec.json", "-o", "user.tar");
  await asRoot("build", "spec.json", "-o", "root.tar");
  assert.ok((await readFile(join(dir, "user.tar"))).equals(await readFile(join(dir, "root.tar"))), "the same archive, byte for byte");

  const inspected = await asUser("inspect", "user.tar", "--json");
  assert.deepEqual(JSON.parse(inspected.toString()), JSON.parse((await asRoot("inspect", "root.tar", "--json")).toString()), "inspect says the same");

  await asUser("export", "user.tar", "-o", "user-fs");
  await asRoot("export", "root.tar", "-o", "root-fs");
  const exported = await exportedTree(join(dir, "user-fs"));
  assert.ok(exported.includes(`app/hello.txt 644 ${Buffer.from("hello\n").toString("base64")}`), exported.join("\n"));
  assert.deepEqual(exported, await exportedTree(join(dir, "root-fs")), "the same root file system (owners aside)");
  assert.equal((await lstat(join(dir, "user-fs", "app", "hello.txt"))).uid, user.uid, "the user's export belongs to the user");

  await asUser("copy", "user.tar", `oci:${join(dir, "user-oci")}:1`);
  await asRoot("copy", "root.tar", `oci:${join(dir, "root-oci")}:1`);
  const copied = await skopeoJson<{ Digest: string; Layers: string[] }>("inspect", `oci:${join(dir, "user-oci")}:1`);
  const rootCopy = await skopeoJson<{ Digest: string; Layers: string[] }>("inspect", `oci:${join(dir, "root-oci")}:1`);
  assert.equal(copied.Digest, rootCopy.Digest, "skopeo reads the user's copy, with root's manifest digest");

  await copyFile(busybox, join(dir, "base.tar"));
  await openToAll(dir);
  const diff = await asUser("diff", "base.tar", "user.tar", "--json");
  const parsed = JSON.parse(diff.toString()) as { added: string[] };
  assert.deepEqual(parsed.added, ["app", "app/hello.txt", "app/run.sh"]);
  assert.deepEqual(parsed, JSON.parse((await asRoot("diff", "base.tar", "root.tar", "--json")).toString()));
});
