/** The fixed names of docker's `docker save` archives, shared by their readers and writer. */
export const DOCKER_MANIFEST = "manifest.json";
/** The legacy (docker < 1.10) index of images: `{NAME: {TAG: ID}}`; also written beside manifest.json. */
export const LEGACY_REPOSITORIES = "repositories";
