import type { Readable } from "node:stream";
import { UnsupportedError } from "../../model/errors.js";

/** The Docker Engine API client; the socket protocol lands in the next change. */
export class EngineClient {
  readonly address: string;
  constructor(env: NodeJS.ProcessEnv) {
    this.address = env["DOCKER_HOST"] ?? "unix:///var/run/docker.sock";
  }
  private unavailable(): never {
    throw new UnsupportedError(`the Docker engine at ${this.address} cannot be spoken to by this build of gantry yet`);
  }
  async ping(_signal?: AbortSignal): Promise<void> { this.unavailable(); }
  async saveImage(_names: string[], _signal?: AbortSignal): Promise<Readable> { this.unavailable(); }
  async loadImage(_tar: Readable, _signal?: AbortSignal): Promise<string[]> { this.unavailable(); }
}
