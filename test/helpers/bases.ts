import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { FIXTURE_BASES_DIR } from "./paths.js";
import { fileTmpDir } from "./tmp.js";
import { PeerUnavailable, run } from "./tools.js";

/**
 * Base images made at test time by other tools (umoci, skopeo, GNU tar, dockerd),
 * by the scripts in test/fixtures/bases/ (each says how it makes its image). Each
 * script runs at most once per test file; its outputs live until the file ends.
 */

/** What a test may rely on about a base: where it is and which files it holds. */
export interface BaseFixture {
  /** The reference to give gantry and skopeo (a path; docker-archive unless noted). */
  readonly ref: string;
  /** Paths (absolute in the image) of regular files the base holds, with their content. */
  readonly files: Readonly<Record<string, string>>;
  /** Paths the base's lower layers hold but an upper layer deletes. */
  readonly deleted: readonly string[];
  /** Number of layers. */
  readonly layers: number;
  /** How skopeo names it, when `docker-archive:REF` is not enough (several images in one archive). */
  readonly peerRef?: string;
  /** Its rootfs.diff_ids when skopeo cannot read it (legacy archives), from the fixture script. */
  readonly diffIds?: readonly string[];
}

type ScriptName = "umoci-busybox" | "two-images" | "merged-usr" | "whiteout" | "legacy" | "nix2017" | "buildah";

const BUSYBOX_FILES = {
  "/etc/base.txt": "from the base\n",
  "/etc/changed.txt": "the base's version\n",
  "/opt/keep/data": "kept\n",
};

/** Runs a fixture script; exit status 3 means a tool it needs is missing. */
export async function runFixtureScript(script: string, args: string[], env?: NodeJS.ProcessEnv): Promise<void> {
  const result = await run(join(FIXTURE_BASES_DIR, script), args, {
    allowFailure: true,
    timeoutMs: 180_000,
    ...(env ? { env: { ...process.env, ...env } } : {}),
  });
  if (result.code === 3) throw new PeerUnavailable(result.stderr.trim());
  if (result.code !== 0) throw new Error(`${script} ${args.join(" ")} exited ${result.code}: ${result.stderr.trim()}`);
}

/**
 * The fixture bases of one test file. Call at module level (it registers the
 * clean-up of the shared output directory with node:test).
 */
export function fixtureBases() {
  const outDir = fileTmpDir("gantry-bases-");
  const made = new Map<ScriptName, Promise<string>>();
  const make = (script: ScriptName): Promise<string> => {
    let p = made.get(script);
    if (!p) {
      p = (async () => {
        const dir = join(await outDir(), script);
        await runFixtureScript(`${script}.sh`, [dir]);
        return dir;
      })();
      made.set(script, p);
    }
    return p;
  };

  return {
    /** (a) busybox base as a skopeo docker-archive, one layer. */
    async busyboxArchive(): Promise<BaseFixture> {
      const dir = await make("umoci-busybox");
      return { ref: join(dir, "busybox.tar"), files: BUSYBOX_FILES, deleted: [], layers: 1 };
    },
    /** (d) the same image as umoci's OCI layout, ref `oci:DIR:1`. */
    async busyboxLayout(): Promise<BaseFixture> {
      const dir = await make("umoci-busybox");
      return { ref: `oci:${join(dir, "oci")}:1`, files: BUSYBOX_FILES, deleted: [], layers: 1 };
    },
    /** (a') two images in one archive: multi:one (+ multi:uno) and multi:two. */
    async twoImages(): Promise<{ path: string; one: BaseFixture; two: BaseFixture }> {
      const dir = await make("two-images");
      const path = join(dir, "multi.tar");
      return {
        path,
        one: {
          ref: path, peerRef: `docker-archive:${path}:multi:one`,
          files: { "/etc/which": "one\n" }, deleted: ["/etc/only-in-two"], layers: 1,
        },
        two: {
          ref: path, peerRef: `docker-archive:${path}:multi:two`,
          files: { "/etc/which": "two\n", "/etc/only-in-two": "two\n" }, deleted: [], layers: 2,
        },
      };
    },
    /** (b) merged /usr: /bin -> usr/bin, /lib -> usr/lib. */
    async mergedUsr(): Promise<BaseFixture> {
      const dir = await make("merged-usr");
      return {
        ref: join(dir, "merged-usr.tar"),
        files: { "/usr/lib/base-lib.txt": "a library of the base\n" },
        deleted: [],
        layers: 1,
      };
    },
    /** (c) two layers, the upper one deleting /etc/doomed.txt and /var/gone with whiteouts. */
    async whiteout(): Promise<BaseFixture> {
      const dir = await make("whiteout");
      return {
        ref: join(dir, "whiteout.tar"),
        files: { "/etc/kept.txt": "still here\n", "/etc/added.txt": "added by layer 2\n" },
        deleted: ["/etc/doomed.txt", "/var/gone", "/var/gone/inner.txt"],
        layers: 2,
      };
    },
    /** (e) legacy docker save: repositories + ID/json + ID/layer.tar, parent chain of two. */
    async legacy(): Promise<BaseFixture> {
      const dir = await make("legacy");
      const diffIds = (await readFile(join(dir, "legacy.diff_ids"), "utf8")).split("\n").filter(Boolean);
      return {
        ref: join(dir, "legacy.tar"),
        files: { "/etc/legacy.txt": "from a legacy archive\n" },
        deleted: [],
        layers: 2,
        diffIds,
      };
    },
    /** (h) the busybox base as buildah's docker-archive. */
    async buildahArchive(): Promise<BaseFixture> {
      const dir = await make("buildah");
      return { ref: join(dir, "buildah.tar"), files: BUSYBOX_FILES, deleted: [], layers: 1 };
    },
    /** (h') the same image as buildah's OCI archive, ref `oci-archive:PATH:1`. */
    async buildahOciArchive(): Promise<BaseFixture> {
      const dir = await make("buildah");
      return { ref: `oci-archive:${join(dir, "buildah-oci.tar")}:1`, files: BUSYBOX_FILES, deleted: [], layers: 1 };
    },
    /** (f) 2017 nixpkgs naming: ./sha256:HEX gzip layers, ./HEX.json config. */
    async nix2017(): Promise<BaseFixture> {
      const dir = await make("nix2017");
      return {
        ref: join(dir, "nix2017.tar"),
        files: { "/etc/nix.txt": "from a nix archive\n", "/nix/store/abc-hello/bin/hello": "#!/bin/sh\necho hello from nix\n" },
        deleted: [],
        layers: 2,
      };
    },
  };
}

export type FixtureBases = ReturnType<typeof fixtureBases>;

/**
 * (g) The same image as `from`, as dockerd 20.10's own `docker save` writes it
 * (ID/layer.tar, ID/json, CONFIG.json, manifest.json, repositories): loaded into
 * `daemon` and saved again by docker-resave.sh. `repoTag` must be one `from` carries.
 */
export async function dockerSavedBase(
  daemon: { env: NodeJS.ProcessEnv },
  from: BaseFixture,
  repoTag: string,
  outDir: string,
): Promise<BaseFixture> {
  await runFixtureScript("docker-resave.sh", [from.ref, repoTag, outDir], daemon.env);
  return { ...from, ref: join(outDir, "docker-save.tar") };
}
