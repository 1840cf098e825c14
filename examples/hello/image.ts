// The same image as image.json, as a TypeScript spec: `gantry build examples/hello/image.ts`.
import { defineImage } from "gantry";

export default defineImage({
  name: "hello",
  tag: "latest",
  copyToRoot: ["./root"],
  config: {
    Cmd: ["/app/hello.sh"],
    Env: ["GREETING=hello from gantry"],
    WorkingDir: "/app",
    Labels: { "org.opencontainers.image.title": "hello" },
  },
  perms: [{ path: "/app/hello.sh", mode: "0755" }],
});
