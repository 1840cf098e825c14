import { setRegistryReader, type ReadOptions } from "../read.js";
import { setRegistryWriter, type WriteOptions } from "../write.js";
import { UnsupportedError } from "../../model/errors.js";
import type { RegistryOptions } from "./options.js";
import { readRegistryImage } from "./pull.js";
import { pushImage, type PushOptions } from "./push.js";

/**
 * Plugs the registry into `readImage` / `writeImage`, so `docker://` works wherever any
 * reference does (a build's `fromImage`, inspect, export). Importing this module installs
 * the hooks. Registry settings travel in the options' `registry` field when the caller
 * gives one; otherwise credentials come from the docker config files.
 */
function registryOptionsOf(opts: ReadOptions | WriteOptions): RegistryOptions & Pick<PushOptions, "format"> {
  return opts.registry ?? {};
}

setRegistryReader((ref, opts) => {
  const pullOpts = { ...registryOptionsOf(opts) };
  if (opts.signal) pullOpts.signal = opts.signal;
  return readRegistryImage(ref, opts.platform !== undefined ? { ...pullOpts, platform: opts.platform } : pullOpts);
});

setRegistryWriter(async (ref, images, opts) => {
  const [only, ...more] = images;
  if (!only || more.length > 0) {
    throw new UnsupportedError(`docker://${ref} holds one image, but ${images.length} were given; push them one at a time, each to its own tag`);
  }
  const pushOpts: PushOptions = { ...registryOptionsOf(opts) };
  if (opts.signal) pushOpts.signal = opts.signal;
  const result = await pushImage(only.image, ref, pushOpts);
  return { manifestDigests: [result.digest], bytes: result.bytes };
});
