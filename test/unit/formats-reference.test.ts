import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GantryError } from "../../src/model/errors.js";
import { formatImageRef, resolveReference, type ImageRef } from "../../src/transports/reference.js";
import { tmpDir } from "../helpers/tmp.js";
import { fixture } from "./formats-fixtures.js";

async function rejectsWith(p: Promise<unknown>, code: string, mention: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof GantryError, `not a GantryError: ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.ok(err.message.includes(mention), `"${err.message}" does not mention ${mention}`);
    return true;
  });
}

test("transport references parse as skopeo spells them", async () => {
  const cases: [string, ImageRef][] = [
    ["docker-archive:/x/app.tar", { transport: "docker-archive", path: "/x/app.tar" }],
    ["docker-archive:app.tar:app", { transport: "docker-archive", path: "app.tar", name: "app:latest" }],
    ["docker-archive:app.tar:docker.io/library/app:2", { transport: "docker-archive", path: "app.tar", name: "app:2" }],
    ["docker-archive:a.tar:localhost:5000/team/app:1.0", { transport: "docker-archive", path: "a.tar", name: "localhost:5000/team/app:1.0" }],
    ["oci:layout", { transport: "oci", path: "layout" }],
    ["oci:layout:v1.0", { transport: "oci", path: "layout", refName: "v1.0" }],
    ["oci:layout:example.com/app:1", { transport: "oci", path: "layout", refName: "example.com/app:1" }],
    ["oci-archive:/tmp/x.tar:latest", { transport: "oci-archive", path: "/tmp/x.tar", refName: "latest" }],
    ["docker://127.0.0.1:5000/app:1", { transport: "docker", ref: "127.0.0.1:5000/app:1" }],
    ["-", { transport: "docker-archive", path: "-" }],
  ];
  for (const [input, want] of cases) {
    assert.deepEqual(await resolveReference(input, "read"), want, input);
  }
  assert.deepEqual(await resolveReference("-", "write"), { transport: "docker-archive", path: "-" });
  assert.equal(formatImageRef({ transport: "oci", path: "d", refName: "r" }), "oci:d:r");
});

test("invalid references are refused naming the reference", async () => {
  const bad: [string, string][] = [
    ["", "empty"],
    ["docker-archive:", "no path"],
    ["docker-archive:x.tar:", "nothing follows"],
    ["docker-archive:x.tar:Upper/Case", "Upper/Case"],
    ["docker-archive:x.tar:app@sha256:" + "a".repeat(64), "app@sha256"],
    ["oci:dir:bad ref!", "bad ref!"],
    ["oci-archive::r", "no path"],
    ["docker://", "no repository"],
    ["docker:app", "docker://"],
    ["containers-storage:app", "not supported"],
    ["dir:/some/dir", "not supported"],
  ];
  for (const [input, mention] of bad) {
    await rejectsWith(resolveReference(input, "read"), "REFERENCE_INVALID", mention);
  }
});

test("a bare path read is recognised by what it holds", async (t) => {
  const expect: [string, ImageRef["transport"]][] = [
    ["oci-umoci", "oci"],
    ["skopeo-app.tar", "docker-archive"],
    ["docker20-multi.tar", "docker-archive"],
    ["legacy.tar", "docker-archive"],
    ["docker25-blobs.tar", "docker-archive"], // both kinds at once: manifest.json wins
    ["oci-multiarch.tar", "oci-archive"],
  ];
  for (const [name, transport] of expect) {
    const ref = await resolveReference(fixture(name), "read");
    assert.equal(ref.transport, transport, name);
  }
  const dir = await tmpDir(t, "gantry-ref-");
  await rejectsWith(resolveReference(join(dir, "missing.tar"), "read"), "REFERENCE_INVALID", "missing.tar");
  await mkdir(join(dir, "empty"));
  await rejectsWith(resolveReference(join(dir, "empty"), "read"), "REFERENCE_INVALID", "neither an OCI layout");
  await mkdir(join(dir, "unpacked"));
  await writeFile(join(dir, "unpacked", "manifest.json"), "[]");
  assert.equal((await resolveReference(join(dir, "unpacked"), "read")).transport, "docker-archive");
});

test("a bare path written is a docker-archive unless it is an OCI layout", async (t) => {
  const dir = await tmpDir(t, "gantry-ref-");
  assert.deepEqual(await resolveReference(join(dir, "new.tar"), "write"), { transport: "docker-archive", path: join(dir, "new.tar") });
  assert.equal((await resolveReference(fixture("oci-umoci"), "write")).transport, "oci");
  await rejectsWith(resolveReference(dir, "write"), "REFERENCE_INVALID", "not an OCI layout");
});
