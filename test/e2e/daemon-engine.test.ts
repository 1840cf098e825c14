/**
 * The Docker engine client against a real dockerd (the private one of test/helpers/dockerd.ts):
 * an image made by hand here is loaded through the client, dockerd's own CLI sees it, and
 * saving it through the client gives it back by name. Nothing reaches the network: the image
 * is built from bytes in this file and no container is run.
 */
import assert from "node:assert/strict";
import { createReadStream, createWriteStream } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { pack as tarPack } from "tar-stream";
import { sha256 } from "../../src/model/digest.js";
import { EngineError, ImageNotFoundError } from "../../src/model/errors.js";
import { EngineClient } from "../../src/transports/docker-daemon/engine.js";
import { archiveManifest, tarMember } from "../helpers/archive.js";
import { sharedDockerd } from "../helpers/dockerd.js";
import { tmpDir } from "../helpers/tmp.js";
import { peerTest } from "../helpers/tools.js";

const dockerd = sharedDockerd();

const IMAGE = "gantry-test/engine-client:1";

/** A tar of `entries` (name → contents), as bytes, with fixed owners and times. */
async function tarOf(entries: Record<string, Buffer | string>): Promise<Buffer> {
  const pack = tarPack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on("data", (chunk: unknown) => { chunks.push(chunk as Buffer); });
    pack.on("end", resolve);
    pack.on("error", reject);
  });
  for (const [name, body] of Object.entries(entries)) {
    pack.entry({ name, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0 }, body);
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** A one-layer docker-archive named `name`, holding /hello.txt; returns its path and config digest. */
async function handMadeArchive(dir: string, name: string): Promise<{ path: string; configDigest: string }> {
  const layer = await tarOf({ "hello.txt": "hello from gantry's engine client\n" });
  const config = Buffer.from(JSON.stringify({
    architecture: process.arch === "x64" ? "amd64" : process.arch,
    os: "linux",
    config: { Cmd: ["/hello.txt"] },
    rootfs: { type: "layers", diff_ids: [sha256(layer)] },
    history: [{ created: "1970-01-01T00:00:00Z", created_by: "gantry e2e test" }],
  }));
  const configDigest = sha256(config);
  const configName = `${configDigest.slice("sha256:".length)}.json`;
  const manifest = JSON.stringify([{ Config: configName, RepoTags: [name], Layers: ["layer/layer.tar"] }]);
  const path = join(dir, "image.tar");
  await writeFile(path, await tarOf({ [configName]: config, "layer/layer.tar": layer, "manifest.json": manifest }));
  return { path, configDigest };
}

peerTest("an image loaded through the client is seen by docker, and saving it through the client gives it back", async (t) => {
  const daemon = await dockerd.get();
  const dir = await tmpDir(t);
  const client = new EngineClient({ env: { DOCKER_HOST: daemon.host } });

  const ping = await client.ping();
  assert.match(ping.apiVersion ?? "", /^1\.\d+$/);

  const { path, configDigest } = await handMadeArchive(dir, IMAGE);
  const loaded = await client.loadImage(createReadStream(path));
  assert.deepEqual(loaded, { names: [IMAGE], ids: [] });

  const inspected = JSON.parse((await daemon.docker(["image", "inspect", IMAGE])).stdout.toString("utf8")) as Array<{ Id: string; RepoTags: string[]; RootFS: { Layers: string[] } }>;
  assert.equal(inspected[0]?.Id, configDigest, "dockerd's image ID is the config digest of the hand-made image");
  assert.deepEqual(inspected[0]?.RepoTags, [IMAGE]);
  assert.equal(inspected[0]?.RootFS.Layers.length, 1);

  const saved = join(dir, "saved.tar");
  await pipeline(await client.saveImage([IMAGE]), createWriteStream(saved));
  const manifest = await archiveManifest(saved);
  assert.equal(manifest.length, 1);
  assert.deepEqual(manifest[0]?.RepoTags, [IMAGE]);
  assert.equal(sha256(await tarMember(saved, manifest[0]!.Config)), configDigest, "the saved config is the one loaded");
});

peerTest("what dockerd refuses comes back as gantry errors quoting dockerd", async () => {
  const daemon = await dockerd.get();
  const client = new EngineClient({ env: { DOCKER_HOST: daemon.host } });

  await assert.rejects(client.saveImage(["gantry-test/never-loaded:1"]), (err: unknown) => {
    assert.ok(err instanceof ImageNotFoundError, String(err));
    assert.match(err.message, new RegExp(`^the Docker engine at ${daemon.host} has no image gantry-test/never-loaded:1 \\(.+\\); `));
    return true;
  });

  // dockerd answers 200 and only then finds that the body is no image: the error is in its messages.
  await assert.rejects(client.loadImage(Readable.from([Buffer.alloc(4096, 0x41)])), (err: unknown) => {
    assert.ok(err instanceof EngineError, String(err));
    assert.match(err.message, new RegExp(`^the Docker engine at ${daemon.host} could not load the image: .+`));
    return true;
  });
});
