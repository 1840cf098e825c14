import { access, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { GantryError, IoError, RuntimeError, ioError } from "../model/errors.js";
import type { Layer } from "../model/image.js";
import type { ProgressListener } from "../model/progress.js";
import { extractTree } from "../flatten/flatten.js";
import { mergedTree } from "../layer/merged-tree.js";
import type { SourceSpec, SourceTree } from "../layer/sources.js";
import type { FileTree } from "../layer/tree.js";
import { checkScriptResult } from "../runtime/process.js";
import { rootlessNamespace, type RootlessNamespace } from "../runtime/rootless-namespace.js";
import { runInUserNamespace } from "../runtime/user-namespace.js";
import { errorOf, treeFromJson, type AgentJob, type AgentResult } from "./rootless-job.js";
import { keepUnmadeDevices, ownerInside, ownersToApply, restoreCollapsedOwners } from "./rootless-owners.js";
import type { Stage } from "./stage.js";

/**
 * runAsRoot when gantry is not root (nixpkgs' fakeRootCommands, rootless buildah): the
 * same root file system, script and walk as under root, with root's part played by the
 * agent (rootless-agent.ts) as root of a user namespace.
 *
 * gantry extracts the layers below into the stage as the user (no chown: the user cannot;
 * no device nodes: nobody but real root can make them), then starts the agent in a user
 * namespace that maps the user to 0 and its /etc/subuid and /etc/subgid ranges to 1, 2...
 * The agent gives the extracted paths their owners (a file of uid 1000 is then owned by
 * the subordinate id that stands for 1000), lays the sources, runs the script, walks the
 * result (owners as the namespace sees them: exactly what the script set) and hands the
 * files back to the user. gantry then puts back what the namespace could not hold
 * (rootless-owners.ts) and compares the walked root with the image as under root.
 */

/** The agent, beside this module in dist (the CLI bundle sits in dist/src/cli, one level away as well). */
const AGENT = fileURLToPath(new URL("../builder/rootless-agent.js", import.meta.url));

/** A runAsRoot layer to stage and run without root: what it is laid over, its sources and its scripts. */
export interface RootlessRunAsRoot {
  stage: Stage;
  /** The merged tree of `lowerLayers`: what the layer is compared with. */
  below: FileTree;
  lowerLayers: readonly Layer[];
  sources: readonly SourceSpec[];
  /** The spec's owner of copyToRoot files. */
  owner: { uid: number; gid: number };
  /** The runAsRoot script, run with the image's /bin/sh. */
  script: string;
  /** The image's Env, NAME=VALUE, for the script. */
  env: string[];
  extraCommands?: string | undefined;
  signal?: AbortSignal | undefined;
  progress: ProgressListener;
}

/** A runAsRoot layer staged and run: its root as walked. The caller must dispose() it once the layer is packed. */
export interface RootlessStaged {
  /** The staged root as walked, owners as the image has them. */
  tree: SourceTree;
  /** Removes the stage, through the namespace should the user alone not manage. */
  dispose(): Promise<void>;
}

/**
 * Stages, runs and walks a runAsRoot layer without root.
 * @throws RuntimeError when no user namespace can be made or the script fails; the errors
 *         of extraction, staging and walking as under root.
 */
export async function runAsRootWithoutRoot(req: RootlessRunAsRoot): Promise<RootlessStaged> {
  if (process.env["GANTRY_RUNTIME"] === "runc") {
    throw new RuntimeError("runAsRoot as an ordinary user runs its script with unshare + chroot in a user namespace, so GANTRY_RUNTIME=runc needs gantry to run as root; unset it or set GANTRY_RUNTIME=unshare");
  }
  const ns = await rootlessNamespace();
  req.progress({ step: "layer", message: ns.note });
  const dispose = (): Promise<void> => removeStage(req.stage, ns);
  try {
    return { tree: await stageAndRun(req, ns), dispose };
  } catch (err) {
    await dispose().catch(() => undefined);
    throw err;
  }
}

async function stageAndRun(req: RootlessRunAsRoot, ns: RootlessNamespace): Promise<SourceTree> {
  const { signal } = req;
  const extracted = await mergedTree(req.lowerLayers, signal ? { signal } : {});
  const unmade = await extractTree(req.lowerLayers, extracted, req.stage.dir, signal);
  const hidden = unmade.filter((path) => !path.startsWith("dev/"));
  if (hidden.length > 0) {
    req.progress({ step: "layer", message: `runAsRoot as an ordinary user: ${hidden.length} device node(s) of the image (/${hidden[0] ?? ""}${hidden.length > 1 ? ", ..." : ""}) cannot be made without root, so the script does not see them and the layer leaves them as they are` });
  }
  const owners = ownersToApply(extracted, ns.mapping, new Set(unmade));
  const layerOwner = ownerInside(req.owner, ns.mapping);

  const control = await mkdtemp(join(tmpdir(), "gantry-rootless-")).catch((err: unknown) => { throw ioError("the temporary directory for the runAsRoot agent", err); });
  try {
    const job: AgentJob = {
      stage: req.stage.dir, owners: owners.records, sources: [...req.sources],
      owner: { uid: layerOwner.uid, gid: layerOwner.gid }, script: req.script, env: req.env,
      resultFile: join(control, "result.json"),
    };
    if (req.extraCommands !== undefined) job.extraCommands = req.extraCommands;
    const jobFile = join(control, "job.json");
    await writeFile(jobFile, JSON.stringify(job)).catch((err: unknown) => { throw ioError(`the runAsRoot job ${jobFile}`, err); });
    await access(AGENT).catch(() => { throw new RuntimeError(`runAsRoot as an ordinary user needs gantry's agent at ${AGENT}, which is missing; reinstall gantry`); });

    const run = await runInUserNamespace({
      tools: ns.tools, mapping: ns.mapping, command: process.execPath, args: [AGENT, jobFile], env: process.env, cwd: control,
      ...(signal ? { signal } : {}),
    });
    const result = await readResult(job.resultFile);
    if (result === undefined) {
      checkScriptResult("the runAsRoot agent in the user namespace", run);
      throw new RuntimeError(`the runAsRoot agent in the user namespace left no result; its last output: ${run.tail.oneLine()}`);
    }
    if (!result.ok) throw explain(errorOf(result), ns);

    const walked = treeFromJson(result.tree);
    for (const path of result.laid) {
      // A laid path holds the spec's owner, whatever the image had there.
      owners.collapsed.delete(path);
      if (layerOwner.collapsed) owners.collapsed.set(path, layerOwner.collapsed);
    }
    restoreCollapsedOwners(walked, owners.collapsed);
    keepUnmadeDevices(walked, extracted, unmade);
    return walked;
  } finally {
    await rm(control, { recursive: true, force: true });
  }
}

async function readResult(file: string): Promise<AgentResult | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    return undefined;
  }
  try {
    return JSON.parse(text) as AgentResult;
  } catch (err) {
    throw new RuntimeError(`the runAsRoot agent wrote a result gantry cannot read (${(err as Error).message})`);
  }
}

/** A script failing with only id 0 mapped has most likely tried a chown: say why that fails. */
function explain(err: GantryError, ns: RootlessNamespace): GantryError {
  if (ns.singleIdBecause === undefined || !(err instanceof RuntimeError) || !err.message.startsWith("the runAsRoot script")) return err;
  return new RuntimeError(`${err.message}; note that only id 0 exists in its user namespace (${ns.singleIdBecause}), so a chown to any other id fails there`);
}

/**
 * The stage belongs to the user again once the agent is done; should the agent have been
 * killed before handing it back, paths owned by subordinate ids are removed from inside.
 */
async function removeStage(stage: Stage, ns: RootlessNamespace): Promise<void> {
  try {
    await stage.dispose();
    return;
  } catch {
    // fall through: remove it as root of the namespace
  }
  const run = await runInUserNamespace({ tools: ns.tools, mapping: ns.mapping, command: "rm", args: ["-rf", "--", stage.dir], env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin" } });
  if (run.status !== 0) throw new IoError(`the staging directory ${stage.dir} cannot be removed: ${run.tail.oneLine()}`);
}
