// A Node.js app in layers that change at different rates, on a base pinned by digest:
//
//   gantry build ../base/image.json -o oci-archive:../base/base.tar   # the base, once
//   npm ci                                                            # node_modules from the lockfile
//   gantry build image.ts --load && docker run --rm --pull=never node-app:1
//
// An edit to src/ rebuilds and pushes the app layer alone; the runtime and dependency
// layers come from the cache (or, with --cache-from, from another machine's).
import { closureOf, defineImage } from "gantry";

const node = process.execPath;

export default defineImage({
  name: "node-app",
  tag: "1",
  // The base is an index over linux/amd64 and linux/arm64; the build takes this machine's
  // platform from it. fromImageDigest pins it whatever the transport: a base that is not
  // this exact index (or one of its images) fails the build instead of changing the image.
  fromImage: "oci-archive:../base/base.tar",
  fromImageDigest: "sha256:47e1fe4dc69ddf509526503f8505482ee0a51850e23c30325dde56d7d9bb1fbf",
  layers: [
    // The runtime: this machine's node, its loader and its libraries.
    { copyToRoot: [closureOf(node)] },
    // The dependencies: changes when package-lock.json does.
    { copyToRoot: [{ from: "./node_modules", to: "/app/node_modules" }] },
    // The app: changes on every edit.
    { copyToRoot: [{ from: "./src", to: "/app/src" }, { from: "./package.json", to: "/app/package.json" }] },
  ],
  config: {
    Cmd: [node, "/app/src/index.js"],
    WorkingDir: "/app",
    User: "nobody",
  },
});
