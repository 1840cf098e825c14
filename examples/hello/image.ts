// The first image: this machine's node, with its loader and libraries, and a hello script.
// No base, nothing to fetch, so it builds offline:
//
//   npm run example                        # -> examples/hello/hello.tar
//   docker load -i examples/hello/hello.tar && docker run --rm --pull=never hello
//
// closureOf brings the program at its real path plus what the dynamic loader would map
// for it (PT_INTERP, DT_NEEDED through RUNPATH, ld.so.cache and the default paths).
import { closureOf, defineImage } from "gantry";

// The node running this build, by its real path (process.execPath resolves links).
const node = process.execPath;

export default defineImage({
  name: "hello",
  tag: "latest",
  copyToRoot: [closureOf(node), "./root"],
  config: {
    Cmd: [node, "/app/hello.js"],
    Env: ["GREETING=hello from gantry"],
    WorkingDir: "/app",
    Labels: { "org.opencontainers.image.title": "hello" },
  },
});
