import type { Command } from "commander";
import { formatSize } from "../../util/format.js";
import { inspectImage, type InspectedImage, type InspectedIndex, type InspectOptions } from "../../ops/inspect.js";
import { globalOptions, printJson, printLine, runOptions, type GlobalOptions, platformOption } from "../context.js";

function showIndex(r: InspectedIndex, g: GlobalOptions): void {
  if (g.json) {
    printJson({
      RepoTags: r.repoTags,
      Digest: r.manifestDigest,
      MediaType: r.mediaType,
      Manifests: r.manifests.map((m) => ({ Digest: m.digest, MediaType: m.mediaType, Size: m.size, Platform: m.platform ?? null })),
    });
    return;
  }
  printLine(`Names:        ${r.repoTags.join(", ") || "(none)"}`);
  printLine(`Digest:       ${r.manifestDigest}`);
  printLine(`MediaType:    ${r.mediaType}`);
  printLine(`Platforms:    ${r.manifests.length} (show one with --platform)`);
  for (const m of r.manifests) printLine(`  ${(m.platform ?? "(no platform)").padEnd(16)}  ${m.digest}  ${m.mediaType}`);
}

function showImage(r: InspectedImage, g: GlobalOptions): void {
  const c = r.config.config ?? {};
  if (g.json) {
    printJson({
      RepoTags: r.repoTags,
      Digest: r.manifestDigest,
      MediaType: r.mediaType,
      ConfigDigest: r.configDigest,
      Created: r.created,
      Architecture: r.architecture,
      Os: r.os,
      ...(r.variant !== undefined ? { Variant: r.variant } : {}),
      Layers: r.layers.map((l) => l.digest),
      LayersData: r.layers.map((l) => ({ MIMEType: l.mediaType, Digest: l.digest, Size: l.size, DiffID: l.diffId })),
      Env: c.Env ?? [],
      Config: c,
    });
    return;
  }
  printLine(`Names:        ${r.repoTags.join(", ") || "(none)"}`);
  printLine(`Digest:       ${r.manifestDigest}`);
  printLine(`MediaType:    ${r.mediaType}`);
  printLine(`Config:       ${r.configDigest}`);
  printLine(`Created:      ${r.created ?? "(unknown)"}`);
  printLine(`Platform:     ${[r.os, r.architecture, r.variant].filter(Boolean).join("/")}`);
  if (c.Entrypoint) printLine(`Entrypoint:   ${JSON.stringify(c.Entrypoint)}`);
  if (c.Cmd) printLine(`Cmd:          ${JSON.stringify(c.Cmd)}`);
  for (const e of c.Env ?? []) printLine(`Env:          ${e}`);
  if (c.WorkingDir) printLine(`WorkingDir:   ${c.WorkingDir}`);
  if (c.User) printLine(`User:         ${c.User}`);
  printLine(`Layers:       ${r.layers.length}`);
  for (const l of r.layers) printLine(`  ${l.digest}  ${formatSize(l.size).padStart(9)}  ${l.mediaType}`);
}

/**
 * `gantry inspect SRC`: inspectImage, printed as text or JSON on stdout; --raw and --config print
 * the manifest or config bytes exactly as the source holds them.
 */
export function registerInspect(program: Command): void {
  program
    .command("inspect")
    .description("show an image's names, digests, platform, config and layers, or an index's platforms")
    .argument("<src>", "any image reference (docker-archive:, oci:, oci-archive:, dir:, docker://, docker-daemon:, a path, or - for stdin)")
    .option("--raw", "print the manifest (or index) bytes exactly as the source holds them")
    .option("--config", "print the config bytes exactly (of the host's platform, for an index)")
    .addOption(platformOption("which image of a multi-platform source"))
    .action(async (src: string, o: { raw?: boolean; config?: boolean; platform?: string }, cmd: Command) => {
      const g = globalOptions(cmd);
      const opts: InspectOptions = { ref: src, ...runOptions(g), resolveIndex: o.config === true };
      if (o.platform !== undefined) opts.platform = o.platform;
      const r = await inspectImage(opts);
      if (o.raw) { process.stdout.write(r.manifestBytes); return; }
      if (r.kind === "index") { showIndex(r, g); return; }
      if (o.config) { process.stdout.write(r.configBytes); return; }
      showImage(r, g);
    });
}
