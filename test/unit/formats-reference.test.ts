import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GantryError } from "../../src/model/errors.js";
import { resolveReference, type ImageReference } from "../../src/transports/reference.js";
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

/** A parsed reference as a plain record: its transport's name and what the transport made of the rest. */
function shape(ref: ImageReference): { transport: string } & Record<string, unknown> {
  return { transport: ref.transport.name, ...(ref.value as Record<string, unknown>) };
}

test("transport references parse as skopeo spells them", async () => {
  const cases: [string, { transport: string } & Record<string, unknown>][] = [
    ["docker-archive:/x/app.tar", { transport: "docker-archive", path: "/x/app.tar" }],
    ["docker-archive:app.tar:app", { transport: "docker-archive", path: "app.tar", name: "app:latest" }],
    ["docker-archive:app.tar:docker.io/library/app:2", { transport: "docker-archive", path: "app.tar", name: "app:2" }],
    ["docker-archive:a.tar:localhost:5000/team/app:1.0", { transport: "docker-archive", path: "a.tar", name: "localhost:5000/team/app:1.0" }],
    ["oci:layout", { transport: "oci", path: "layout" }],
    ["oci:layout:v1.0", { transport: "oci", path: "layout", refName: "v1.0" }],
    ["oci:layout:example.com/app:1", { transport: "oci", path: "layout", refName: "example.com/app:1" }],
    ["oci-archive:/tmp/x.tar:latest", { transport: "oci-archive", path: "/tmp/x.tar", refName: "latest" }],
    ["dir:/some/dir", { transport: "dir", path: "/some/dir" }],
    ["docker://127.0.0.1:5000/app:1", { transport: "docker", registry: "127.0.0.1:5000", repository: "app", tag: "1" }],
    ["docker-daemon:app", { transport: "docker-daemon", name: "app:latest" }],
    ["docker-daemon:docker.io/library/app:2", { transport: "docker-daemon", name: "app:2" }],
    ["docker-daemon:sha256:" + "b".repeat(64), { transport: "docker-daemon", id: "sha256:" + "b".repeat(64) }],
    ["-", { transport: "docker-archive", path: "-" }],
  ];
  for (const [input, want] of cases) {
    assert.deepEqual(shape(await resolveReference(input, "read")), want, input);
  }
  assert.deepEqual(shape(await resolveReference("-", "write")), { transport: "docker-archive", path: "-" });
  assert.equal(String(await resolveReference("oci:d:r", "read")), "oci:d:r");
  assert.equal(String(await resolveReference("docker-daemon:app", "read")), "docker-daemon:app:latest");
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
    ["dir:", "names no directory"],
    ["docker-daemon:", "names no image"],
    ["docker-daemon:Bad Name", "Bad Name"],
  ];
  for (const [input, mention] of bad) {
    await rejectsWith(resolveReference(input, "read"), "REFERENCE_INVALID", mention);
  }
});

test("a bare path read is recognised by what it holds", async (t) => {
  const expect: [string, string][] = [
    ["oci-umoci", "oci"],
    ["skopeo-app.tar", "docker-archive"],
    ["docker20-multi.tar", "docker-archive"],
    ["legacy.tar", "docker-archive"],
    ["docker25-blobs.tar", "docker-archive"], // both kinds at once: manifest.json wins
    ["oci-multiarch.tar", "oci-archive"],
  ];
  for (const [name, transport] of expect) {
    const ref = await resolveReference(fixture(name), "read");
    assert.equal(ref.transport.name, transport, name);
  }
  const dir = await tmpDir(t, "gantry-ref-");
  await rejectsWith(resolveReference(join(dir, "missing.tar"), "read"), "REFERENCE_INVALID", "missing.tar");
  await mkdir(join(dir, "empty"));
  await rejectsWith(resolveReference(join(dir, "empty"), "read"), "REFERENCE_INVALID", "neither an image archive nor a layout");
  await mkdir(join(dir, "unpacked"));
  await writeFile(join(dir, "unpacked", "manifest.json"), "[]");
  assert.equal((await resolveReference(join(dir, "unpacked"), "read")).transport.name, "docker-archive");
  // skopeo's dir: layout: a manifest.json beside a version file.
  await mkdir(join(dir, "skopeo-dir"));
  await writeFile(join(dir, "skopeo-dir", "manifest.json"), "{}");
  await writeFile(join(dir, "skopeo-dir", "version"), "Directory Transport Version: 1.1\n");
  assert.equal((await resolveReference(join(dir, "skopeo-dir"), "read")).transport.name, "dir");
});

test("a bare path written is a docker-archive unless it is an OCI layout", async (t) => {
  const dir = await tmpDir(t, "gantry-ref-");
  assert.deepEqual(shape(await resolveReference(join(dir, "new.tar"), "write")), { transport: "docker-archive", path: join(dir, "new.tar") });
  assert.equal((await resolveReference(fixture("oci-umoci"), "write")).transport.name, "oci");
  await rejectsWith(resolveReference(dir, "write"), "REFERENCE_INVALID", "not an image layout");
});
