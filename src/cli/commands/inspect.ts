import type { Command } from "commander";
import { formatSize } from "../../util/format.js";
import { inspectImage } from "../../ops/inspect.js";
import { globalOptions, printJson, printLine, runOptions } from "../context.js";

export function registerInspect(program: Command): void {
  program
    .command("inspect")
    .description("show an image's names, digests, platform, config and layers")
    .argument("<src>", "any image reference (docker-archive:, oci:, oci-archive:, docker://, a path, or - for stdin)")
    .option("--raw", "print the manifest bytes exactly")
    .option("--config", "print the config bytes exactly")
    .option("--platform <os/arch[/variant]>", "which image of a multi-platform source (default: this machine's)")
    .action(async (src: string, o: { raw?: boolean; config?: boolean; platform?: string }, cmd: Command) => {
      const g = globalOptions(cmd);
      const r = await inspectImage({ ref: src, ...runOptions(g), ...(o.platform !== undefined ? { platform: o.platform } : {}) });
      if (o.raw) { process.stdout.write(r.manifestBytes); return; }
      if (o.config) { process.stdout.write(r.configBytes); return; }
      const c = r.config.config ?? {};
      if (g.json) {
        printJson({
          RepoTags: r.repoTags,
          Digest: r.manifestDigest,
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
    });
}
