/** gantry's public API: re-exports only. */
export { buildImage, type BuildOptions, type BuildResult, type BuiltLayer } from "./builder/build.js";
export {
  defineImage, closureOf, fakeNss, caCertificates, binSh, usrBinEnv, tmp,
  type ImageSpecInput, type CopySourceInput, type BuiltinName,
} from "./builder/spec-schema.js";
export { inspectImage, type InspectOptions, type InspectResult } from "./ops/inspect.js";
export { exportImage, type ExportOptions, type ExportResult, type ExportFormat } from "./ops/export.js";
export { diffImages, type DiffOptions, type DiffResult, type ChangedAttribute } from "./ops/diff.js";
export { mergeImages, type MergeOptions, type MergeResult, type MergedImage } from "./ops/merge.js";
export {
  pullImage, pushImage, copyImage, type RegistryAccess, type PullImageOptions, type PullImageResult,
  type PushImageOptions, type PushImageResult, type CopyImageOptions, type CopyImageResult,
} from "./ops/copy.js";
export {
  GantryError, SpecError, SourceUnreadableError, InvalidReferenceError, ImageNotFoundError, FormatError,
  DigestMismatchError, UnsafePathError, RegistryError, AuthError, EngineError, RuntimeError, IoError,
  AbortedError, UnsupportedError, type ErrorCode,
} from "./model/errors.js";
export type { Image, Layer } from "./model/image.js";
export type { Digest } from "./model/digest.js";
export type { ProgressEvent, ProgressListener } from "./model/progress.js";
