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

/**
 * Finishes `assembly` as NAME with `inPlace` (the assembly goes either way) and checks it:
 * the same bytes as the archive `fromNothing` makes without one, and no temporary file left.
 */
async function assertFinishedAsFromNothing(dir: string, name: string, assembly: ArchiveAssembly, inPlace: ArchiveEntry[], fromNothing: ArchiveEntry[]): Promise<void> {
  const plain = join(dir, `${name}.plain`);
  await writeTarTo(plain, fromNothing, {});
  try {
    const bytes = await writeTarTo(join(dir, name), inPlace, { assembly });
    const got = await readBack(join(dir, name));
    assert.equal(bytes, got.length);
    assert.ok(got.equals(await readBack(plain)), "the same bytes as the archive written from nothing");
  } finally {
    await assembly.discard();
  }
  assert.deepEqual((await promisify(readdir)(dir)).sort(), [name, `${name}.plain`], "the temporary file became the archive or is gone");
}

test("a layer already in the file is not read again, and the archive is the one written from nothing", async (t) => {
  const dir = await tmpDir(t, "gantry-assembly-");
  const assembly = await assembled(join(dir, "in-place.tar"));
  assert.ok(assembly.holdsLayers);
  await assertFinishedAsFromNothing(dir, "in-place.tar", assembly, entries(false), entries(true));
});

test("a layer that is not where the tar puts it is written whole, and the archive is still the one written from nothing", async (t) => {
  const dir = await tmpDir(t, "gantry-assembly-");
  const assembly = await assembled(join(dir, "misplaced.tar"), 512);
  await assertFinishedAsFromNothing(dir, "misplaced.tar", assembly, entries(true), entries(true));
});

test("a layer packed again under a digest already placed places nothing more, and the archive is still the one written from nothing", async (t) => {
  const dir = await tmpDir(t, "gantry-assembly-");
  const assembly = await ArchiveAssembly.create(join(dir, "twice.tar"), true);
  assembly.start([]);
  for (let i = 0; i < 2; i++) {
    const at = assembly.nextLayerAt()!.position;
    await writeAt(assembly.fd, layerA, 0, layerA.length, at);
    assembly.placed(sha256(layerA), layerA.length, at);
  }
  assert.equal(assembly.nextLayerAt(), undefined, "no layer goes over the second copy, which the image is read from");
  const second = (await readBack(assembly.path)).subarray(-layerA.length);
  assert.ok(second.equals(layerA), "the second copy stays where it was written");
  const index = { name: "index.json", bytes: Buffer.from("{}") };
  await assertFinishedAsFromNothing(dir, "twice.tar", assembly, [blob(layerA, false), blob(layerB, true), index], [blob(layerA, true), blob(layerB, true), index]);
});
