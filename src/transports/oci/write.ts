import { chmod, copyFile, link, mkdir, readdir, readlink, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { FormatError, ioError, AbortedError } from "../../model/errors.js";
import type { Descriptor } from "../../model/oci.js";
import { writeDirAtomically } from "../../util/atomic.js";
import { writeTarTo, type ArchiveWriteOptions } from "../../archive/archive-tar.js";
import { DirBag } from "../../archive/file-bag.js";
import { OCI_LAYOUT_BYTES, blobsMeter, indexJsonBytes, layoutEntries, planLayout, writeBlobFile, type PlanOptions } from "../layout-plan.js";
import type { ProgressListener } from "../../model/progress.js";
import type { WriteItem, WriteResult } from "../transport.js";
import { ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, OCI_INDEX_FILE, OCI_LAYOUT_FILE, blobPath } from "./names.js";
import { readTopIndex } from "./read.js";

/**
 * OCI image layouts, as a directory (oci:DIR[:REF]) or a tar of one (oci-archive:).
 * Writing into an existing layout adds to it, as skopeo does: its other blobs and
 * index entries stay, an entry with the same ref name is replaced.
 */

/** How writeOciLayout writes: the names given to each item in index.json, and a listener told the bytes written. */
export type OciWriteOptions = PlanOptions & { onProgress?: ProgressListener | undefined };

/** Whether a new index entry takes the place of an existing one. */
function replaces(added: Descriptor, existing: Descriptor): boolean {
  const ref = added.annotations?.[ANNOTATION_REF_NAME];
  if (ref === undefined) return existing.digest === added.digest && existing.annotations?.[ANNOTATION_REF_NAME] === undefined;
  if (existing.annotations?.[ANNOTATION_REF_NAME] !== ref) return false;
  const name = added.annotations?.[ANNOTATION_CONTAINERD_NAME];
  const existingName = existing.annotations?.[ANNOTATION_CONTAINERD_NAME];
  return name === undefined || existingName === undefined || name === existingName;
}

/**
 * An existing layout's index entries with `added` appended; an existing entry of the same ref name (and
 * image name, when both have one), or the same digest when neither has a ref name, gives way.
 */
export function mergeIndex(existing: readonly Descriptor[], added: readonly Descriptor[]): Descriptor[] {
  return [...existing.filter((e) => !added.some((a) => replaces(a, e))), ...added];
}

/** The existing layout's index entries; undefined when there is no layout (or an empty directory) yet. */
async function existingIndex(dir: string): Promise<Descriptor[] | undefined> {
  const st = await stat(dir).catch(() => undefined);
  if (!st) return undefined;
  if (!st.isDirectory()) throw new FormatError(`${dir} exists and is not a directory; an OCI layout is a directory`);
  const bag = new DirBag(dir);
  if (await bag.has(OCI_LAYOUT_FILE)) return [...(await readTopIndex(bag))];
  const names = await readdir(dir).catch((err: unknown) => { throw ioError(`the directory ${dir}`, err); });
  if (names.length === 0) return undefined;
  throw new FormatError(`${dir} is a directory that is not an OCI layout (no ${OCI_LAYOUT_FILE}); name an empty or new directory`);
}

/** Recreates `src` in `dst` with hard links (copies across devices), skipping `skip` at the top. */
async function linkTree(src: string, dst: string, skip: ReadonlySet<string> = new Set()): Promise<void> {
  for (const entry of await readdir(src, { withFileTypes: true })) {
    if (skip.has(entry.name)) continue;
    const from = join(src, entry.name);
    const to = join(dst, entry.name);
    if (entry.isDirectory()) {
      await mkdir(to, { recursive: true });
      await linkTree(from, to);
    } else if (entry.isSymbolicLink()) {
      await symlink(await readlink(from), to);
    } else if (entry.isFile()) {
      await link(from, to).catch(() => copyFile(from, to));
    }
  }
}

/** Checked before any work: `dir` is absent, empty, or a layout. */
export async function checkLayoutDestination(dir: string): Promise<void> {
  await existingIndex(dir);
}

/**
 * Writes `items` into the OCI layout at `dir`, adding to an existing one, as a new directory swapped into
 * place (files of the old one hard-linked). Throws FormatError when `dir` is a file or a non-empty non-layout.
 */
export async function writeOciLayout(dir: string, items: readonly WriteItem[], opts: OciWriteOptions = {}): Promise<WriteResult> {
  const plan = await planLayout(items, opts);
  const existing = await existingIndex(dir);
  const indexBytes = indexJsonBytes(mergeIndex(existing ?? [], plan.index));
  let bytes = 0;
  await writeDirAtomically(dir, async (tmp) => {
    try {
      await chmod(tmp, 0o755);
      if (existing) await linkTree(dir, tmp, new Set([OCI_INDEX_FILE, OCI_LAYOUT_FILE]));
      const meter = blobsMeter(plan.blobs, dir, opts.onProgress);
      for (const blob of plan.blobs) bytes += await writeBlobFile(join(tmp, blobPath(blob.digest)), blob, opts.signal, meter);
      meter.end();
      await writeFile(join(tmp, OCI_LAYOUT_FILE), OCI_LAYOUT_BYTES, { mode: 0o644 });
      await writeFile(join(tmp, OCI_INDEX_FILE), indexBytes, { mode: 0o644 });
      bytes += OCI_LAYOUT_BYTES.length + indexBytes.length;
    } catch (err) {
      if (opts.signal?.aborted) throw new AbortedError(opts.signal.reason);
      throw err;
    }
  });
  return { digests: plan.items.map((i) => i.doc.digest), bytes };
}

/** Writes `items` as a tar of a new OCI layout to `path` (replaced atomically), or to the output stream for `-`. */
export async function writeOciArchive(
  path: string, items: readonly WriteItem[], opts: OciWriteOptions & Pick<ArchiveWriteOptions, "output" | "written" | "assembly"> = {},
): Promise<WriteResult> {
  const plan = await planLayout(items, opts);
  const bytes = await writeTarTo(path, layoutEntries(plan), { signal: opts.signal, onProgress: opts.onProgress, written: opts.written, assembly: opts.assembly, ...(opts.output ? { output: opts.output } : {}) });
  return { digests: plan.items.map((i) => i.doc.digest), bytes };
}
