/**
 * The pure parts of runAsRoot as an ordinary user: which subordinate ids /etc/subuid grants
 * (src/runtime/subordinate-ids.ts), the namespace's id map built from them (id-map.ts),
 * and the owners gantry asks the agent to give, collapses, and gives back after the walk
 * (src/builder/rootless-owners.ts); and the handshake that starts a program in a user
 * namespace with a single-id map (user-namespace.ts), which needs no subordinate ids. The
 * whole, with subordinate ids, is exercised by test/e2e/runasroot-rootless.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tmpDir } from "../helpers/tmp.js";
import { RuntimeError } from "../../src/model/errors.js";
import { runInUserNamespace } from "../../src/runtime/user-namespace.js";
import { FileTree, type TreeNode } from "../../src/layer/tree.js";
import { SourceTree } from "../../src/layer/sources.js";
import { parseSubordinateIds } from "../../src/runtime/subordinate-ids.js";
import {
  describeInside, isMappedInside, mapArguments, mapFileText, mappingFor,
} from "../../src/runtime/id-map.js";
import { keepUnmadeDevices, ownerInside, ownersToApply, restoreCollapsedOwners } from "../../src/builder/rootless-owners.js";

const SUBUID = [
  "# comment",
  "alice:100000:65536",
  "bob:165536:65536",
  "1001:231072:1000",
  "alice:300000:10",
  "alice:bad:10",
  "alice:400000:0",
  "alice:1:2:3",
  "",
].join("\n");

test("subordinate ranges are the user's lines, by name or by uid, in file order; malformed and empty ones are skipped", () => {
  assert.deepEqual(parseSubordinateIds(SUBUID, "alice", 1001), [
    { first: 100000, count: 65536 }, { first: 231072, count: 1000 }, { first: 300000, count: 10 },
  ]);
  assert.deepEqual(parseSubordinateIds(SUBUID, "bob", 1002), [{ first: 165536, count: 65536 }]);
  assert.deepEqual(parseSubordinateIds(SUBUID, "carol", 1003), []);
  assert.deepEqual(parseSubordinateIds("", "alice", 1001), []);
});

test("the map makes the user 0 and its ranges 1, 2, ... without gaps; ids outside it do not exist inside", () => {
  const m = mappingFor(1001, 1002, [{ first: 100000, count: 65536 }, { first: 300000, count: 10 }], [{ first: 200000, count: 5 }]);
  assert.deepEqual(m.uids, [
    { inside: 0, outside: 1001, count: 1 },
    { inside: 1, outside: 100000, count: 65536 },
    { inside: 65537, outside: 300000, count: 10 },
  ]);
  assert.deepEqual(m.gids, [{ inside: 0, outside: 1002, count: 1 }, { inside: 1, outside: 200000, count: 5 }]);
  assert.equal(isMappedInside(m.uids, 65546), true);
  assert.equal(isMappedInside(m.uids, 65547), false);
  assert.equal(isMappedInside(m.gids, 5), true);
  assert.equal(isMappedInside(m.gids, 6), false);
  assert.equal(describeInside(m.uids), "0-65546");
  assert.equal(mapFileText(m.gids), "0 1002 1\n1 200000 5\n");
  assert.deepEqual(mapArguments(m.gids), ["0", "1002", "1", "1", "200000", "5"]);
});

test("a range holding the user's own id is left out (the kernel refuses overlapping lines), and at most five lines are made", () => {
  const m = mappingFor(100005, 100005, [{ first: 100000, count: 10 }, { first: 1, count: 1 }], []);
  assert.deepEqual(m.uids, [{ inside: 0, outside: 100005, count: 1 }, { inside: 1, outside: 1, count: 1 }]);
  assert.deepEqual(m.gids, [{ inside: 0, outside: 100005, count: 1 }], "no ranges: the user alone");
  const many = mappingFor(1000, 1000, Array.from({ length: 8 }, (_, i) => ({ first: 200000 + i * 100, count: 100 })), []);
  assert.equal(many.uids.length, 5);
  assert.equal(describeInside(mappingFor(1000, 1000, [], []).uids), "0");
});

function node(partial: Partial<TreeNode> & Pick<TreeNode, "type">): TreeNode {
  return { mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0, layerIndex: 0, ...partial };
}

test("the agent is asked for every owner but 0:0; ids the namespace lacks become 0 and are remembered; unmade devices are skipped", () => {
  const tree = new FileTree();
  tree.set("etc", node({ type: "dir", mode: 0o755 }));
  tree.set("etc/shadow", node({ type: "file", mode: 0o640, gid: 42 }));
  tree.set("home", node({ type: "dir", mode: 0o755 }));
  tree.set("home/app", node({ type: "dir", mode: 0o700, uid: 1000, gid: 1000 }));
  tree.set("home/app/link", node({ type: "symlink", mode: 0o777, uid: 1000, gid: 1000, linkname: "x" }));
  tree.set("opt", node({ type: "dir", mode: 0o755, uid: 100000, gid: 5 }));
  tree.set("lib", node({ type: "dir", mode: 0o755 }));
  tree.set("lib/null", node({ type: "char", mode: 0o666, uid: 7, devmajor: 1, devminor: 3 }));
  const ranged = mappingFor(1001, 1001, [{ first: 200000, count: 65536 }], [{ first: 200000, count: 65536 }]);
  const plan = ownersToApply(tree, ranged, new Set(["lib/null"]));
  assert.deepEqual(plan.records, [
    ["etc/shadow", 0, 42, 0o640, false],
    ["home/app", 1000, 1000, 0o700, false],
    ["home/app/link", 1000, 1000, 0o777, true],
    ["opt", 0, 5, 0o755, false],
  ]);
  assert.deepEqual([...plan.collapsed], [["opt", { uid: 100000 }]], "uid 100000 is beyond the range");

  const single = ownersToApply(tree, mappingFor(1001, 1001, [], []), new Set());
  assert.deepEqual(single.records, [], "with only 0 mapped, nothing can be given");
  assert.deepEqual([...single.collapsed], [
    ["etc/shadow", { gid: 42 }],
    ["home/app", { uid: 1000, gid: 1000 }],
    ["home/app/link", { uid: 1000, gid: 1000 }],
    ["lib/null", { uid: 7 }],
    ["opt", { uid: 100000, gid: 5 }],
  ]);
  assert.deepEqual(ownerInside({ uid: 1000, gid: 0 }, mappingFor(1001, 1001, [], [])), { uid: 0, gid: 0, collapsed: { uid: 1000 } });
  assert.deepEqual(ownerInside({ uid: 1000, gid: 1000 }, ranged), { uid: 1000, gid: 1000 });
});

test("after the walk a collapsed id comes back where the script left 0, and only there", () => {
  const walked = new SourceTree();
  walked.set("etc", { type: "dir", mode: 0o755, size: 0, uid: 0, gid: 0 });
  walked.set("etc/shadow", { type: "file", mode: 0o640, size: 3, uid: 0, gid: 0, hostPath: "/x" });
  walked.set("opt", { type: "dir", mode: 0o755, size: 0, uid: 0, gid: 0 });
  walked.set("srv", { type: "dir", mode: 0o755, size: 0, uid: 33, gid: 0 });
  const changed = restoreCollapsedOwners(walked, new Map([
    ["etc/shadow", { gid: 42 }],
    ["opt", { uid: 100000, gid: 5 }],
    ["srv", { uid: 100000 }],
    ["gone", { uid: 100000 }],
  ]));
  assert.equal(changed, 2);
  assert.deepEqual([walked.get("etc/shadow")?.uid, walked.get("etc/shadow")?.gid], [0, 42]);
  assert.equal(walked.get("etc/shadow")?.hostPath, "/x", "the rest of the node is kept");
  assert.deepEqual([walked.get("opt")?.uid, walked.get("opt")?.gid], [100000, 5]);
  assert.equal(walked.get("srv")?.uid, 33, "an owner the script set stays");
  assert.equal(walked.has("gone"), false, "a deleted path stays deleted");
});

test("device nodes the user could not make stay as the image has them, unless their directory went or something took their place", () => {
  const below = new FileTree();
  below.set("lib", node({ type: "dir", mode: 0o755 }));
  below.set("lib/null", node({ type: "char", mode: 0o666, uid: 7, gid: 8, devmajor: 1, devminor: 3 }));
  below.set("lib/disk", node({ type: "block", mode: 0o660, devmajor: 8, devminor: 0 }));
  below.set("gone", node({ type: "dir", mode: 0o755 }));
  below.set("gone/zero", node({ type: "char", mode: 0o666, devmajor: 1, devminor: 5 }));
  const walked = new SourceTree();
  walked.set("lib", { type: "dir", mode: 0o755, size: 0, uid: 0, gid: 0 });
  walked.set("lib/disk", { type: "file", mode: 0o644, size: 1, uid: 0, gid: 0, hostPath: "/d" });
  keepUnmadeDevices(walked, below, ["gone/zero", "lib/disk", "lib/null"]);
  assert.deepEqual(walked.get("lib/null"), { type: "char", mode: 0o666, size: 0, uid: 7, gid: 8, devmajor: 1, devminor: 3 });
  assert.equal(walked.get("lib/disk")?.type, "file", "what the script put there wins");
  assert.equal(walked.has("gone/zero"), false, "its directory was deleted");
});

const hasUnshare = existsSync("/usr/bin/unshare") || existsSync("/bin/unshare");

test("a program started in a user namespace runs as its root, under the map written for it", { skip: hasUnshare ? false : "util-linux unshare is not installed" }, async () => {
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const result = await runInUserNamespace({
    tools: { unshare: existsSync("/usr/bin/unshare") ? "/usr/bin/unshare" : "/bin/unshare" },
    mapping: mappingFor(uid, gid, [], []),
    command: "/bin/sh", args: ["-c", "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; read x || echo stdin-closed"],
    env: { PATH: "/usr/bin:/bin" },
  });
  assert.equal(result.status, 0, result.tail.oneLine());
  const words = result.tail.tail().map((line) => line.trim().split(/\s+/).join(" "));
  assert.deepEqual(words, ["0", "0", `0 ${uid} 1`, `0 ${gid} 1`, "stdin-closed"]);
});

test("an unshare that cannot make the namespace is one RuntimeError quoting it", async (t) => {
  const refusing = join(await tmpDir(t), "unshare");
  await writeFile(refusing, "#!/bin/sh\necho 'unshare: unshare failed: Operation not permitted' >&2\nexit 1\n", { mode: 0o755 });
  await assert.rejects(runInUserNamespace({
    tools: { unshare: refusing }, mapping: mappingFor(1000, 1000, [], []), command: "true", args: [], env: { PATH: "/usr/bin:/bin" },
  }), (err: unknown) => err instanceof RuntimeError
    && err.message === "unshare --user could not make a user namespace (are unprivileged user namespaces disabled?): unshare: unshare failed: Operation not permitted");
  await assert.rejects(runInUserNamespace({
    tools: { unshare: "/nonexistent/unshare" }, mapping: mappingFor(1000, 1000, [], []), command: "true", args: [], env: {},
  }), (err: unknown) => err instanceof RuntimeError && /\/nonexistent\/unshare cannot be started/.test(err.message));
});

test("subordinate ranges need newuidmap: without it the map is refused in one line naming the package", { skip: hasUnshare ? false : "util-linux unshare is not installed" }, async () => {
  await assert.rejects(runInUserNamespace({
    tools: { unshare: existsSync("/usr/bin/unshare") ? "/usr/bin/unshare" : "/bin/unshare" },
    mapping: mappingFor(process.getuid?.() ?? 0, process.getgid?.() ?? 0, [{ first: 500000000, count: 10 }], []),
    command: "true", args: [], env: { PATH: "/usr/bin:/bin" },
  }), (err: unknown) => err instanceof RuntimeError && err.message === "mapping subordinate uids needs newuidmap, which is not installed (apt-get install uidmap)");
});
