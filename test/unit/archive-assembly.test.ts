/**
 * An archive finished around layers already in its file (archive/assembly.ts,
 * archive-tar.ts writeTarTo): the layers lead, in the order given; a layer in place is not
 * read again; and one that is not where the tar puts it is written whole, with the same
 * bytes as an archive written from nothing.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readdir, readFile, write as writeCb } from "node:fs";
import { promisify } from "node:util";
import { join } from "node:path";
import { Readable } from "node:stream";
import { ArchiveAssembly } from "../../src/archive/assembly.js";
import { writeTarTo, type ArchiveEntry } from "../../src/archive/archive-tar.js";
import { sha256, type Digest } from "../../src/model/digest.js";
import { tmpDir } from "../helpers/tmp.js";

const writeAt = promisify(writeCb);
const readBack = promisify(readFile);

const layerA = Buffer.alloc(1000, 1);
const layerB = Buffer.alloc(70_000, 2);

function blob(bytes: Buffer, readable: boolean): ArchiveEntry {
  const digest: Digest = sha256(bytes);
  const open = async (): Promise<Readable> => {
    if (!readable) throw new Error(`${digest} was read, though its bytes were in place`);
    return Readable.from([bytes]);
  };
  return { name: `blobs/sha256/${digest.slice(7)}`, size: bytes.length, open, what: digest, digest, leading: true };
}

function entries(readable: boolean): ArchiveEntry[] {
  return [
    { name: "index.json", bytes: Buffer.from("{}") },
    blob(layerA, true),
    blob(layerB, readable),
    { name: "blobs/sha256/0000", bytes: Buffer.from("config") },
  ];
}

/** An assembly with layer A passed (not in place) and layer B written at its place, or `misplaced` bytes further. */
async function assembled(dest: string, misplaced = 0): Promise<ArchiveAssembly> {
  const assembly = await ArchiveAssembly.create(dest, false);
  assembly.start([{ digest: sha256(layerA), size: layerA.length }]);
  const at = assembly.nextLayerAt()!.position + misplaced;
  await writeAt(assembly.fd, layerB, 0, layerB.length, at);
  assembly.placed(sha256(layerB), layerB.length, at - misplaced);
  if (misplaced !== 0) {
    // Recorded where the tar will not put it: what writeTarTo must notice.
    (assembly as unknown as { placements: Map<string, { at: number; size: number }> }).placements.set(sha256(layerB), { at, size: layerB.length });
  }
  return assembly;
}

test("layers lead the archive in the order given, after their directories; the rest follows in byte order", async (t) => {
  const dir = await tmpDir(t, "gantry-assembly-");
  const dest = join(dir, "plain.tar");
  await writeTarTo(dest, entries(true), {});
  const names = execFileSync("tar", ["-tf", dest]).toString().trim().split("\n");
  assert.deepEqual(names, ["blobs/", "blobs/sha256/", `blobs/sha256/${sha256(layerA).slice(7)}`, `blobs/sha256/${sha256(layerB).slice(7)}`, "blobs/sha256/0000", "index.json"]);
});

test("a layer already in the file is not read again, and the archive is the one written from nothing", async (t) => {
  const dir = await tmpDir(t, "gantry-assembly-");
  const plain = join(dir, "plain.tar");
  await writeTarTo(plain, entries(true), {});
  const dest = join(dir, "in-place.tar");
  const assembly = await assembled(dest);
  try {
    assert.ok(assembly.holdsLayers);
    const bytes = await writeTarTo(dest, entries(false), { assembly });
    const got = await readBack(dest);
    assert.equal(bytes, got.length);
    assert.ok(got.equals(await readBack(plain)), "the same bytes");
  } finally {
    await assembly.discard();
  }
  assert.deepEqual((await promisify(readdir)(dir)).sort(), ["in-place.tar", "plain.tar"], "the temporary file became the archive");
});

test("a layer that is not where the tar puts it is written whole, and the archive is still the one written from nothing", async (t) => {
  const dir = await tmpDir(t, "gantry-assembly-");
  const plain = join(dir, "plain.tar");
  await writeTarTo(plain, entries(true), {});
  const dest = join(dir, "misplaced.tar");
  const assembly = await assembled(dest, 512);
  try {
    await writeTarTo(dest, entries(true), { assembly });
    assert.ok((await readBack(dest)).equals(await readBack(plain)));
  } finally {
    await assembly.discard();
  }
  assert.deepEqual((await promisify(readdir)(dir)).sort(), ["misplaced.tar", "plain.tar"], "the assembly's temporary file is gone");
});

test("a layer packed again under a digest already placed places nothing more, and the archive is still the one written from nothing", async (t) => {
  const dir = await tmpDir(t, "gantry-assembly-");
  const plain = join(dir, "plain.tar");
  const both: ArchiveEntry[] = [blob(layerA, true), blob(layerB, true), { name: "index.json", bytes: Buffer.from("{}") }];
  await writeTarTo(plain, both, {});
  const dest = join(dir, "twice.tar");
  const assembly = await ArchiveAssembly.create(dest, true);
  try {
    assembly.start([]);
    for (let i = 0; i < 2; i++) {
      const at = assembly.nextLayerAt()!.position;
      await writeAt(assembly.fd, layerA, 0, layerA.length, at);
      assembly.placed(sha256(layerA), layerA.length, at);
    }
    assert.equal(assembly.nextLayerAt(), undefined, "no layer goes over the second copy, which the image is read from");
    const second = (await readBack(assembly.path)).subarray(-layerA.length);
    assert.ok(second.equals(layerA), "the second copy stays where it was written");
    await writeTarTo(dest, [blob(layerA, false), blob(layerB, true), { name: "index.json", bytes: Buffer.from("{}") }], { assembly });
    assert.ok((await readBack(dest)).equals(await readBack(plain)));
  } finally {
    await assembly.discard();
  }
});
