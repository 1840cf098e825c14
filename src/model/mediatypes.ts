/** Media types of the OCI image spec and of Docker's v2 schema 2, in one place. */
export const MediaType = {
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayer: "application/vnd.oci.image.layer.v1.tar",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociLayerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayer: "application/vnd.docker.image.rootfs.diff.tar",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  dockerLayerZstd: "application/vnd.docker.image.rootfs.diff.tar.zstd",
  dockerForeignLayerGzip: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
} as const;

/** How a layer's tar is compressed; "none" is a plain tar. */
export type Compression = "gzip" | "zstd" | "none";

/** The layer media type for a compression, in the OCI or the Docker family. */
export function layerMediaType(compression: Compression, family: "oci" | "docker"): string {
  if (family === "oci") {
    return compression === "gzip" ? MediaType.ociLayerGzip
      : compression === "zstd" ? MediaType.ociLayerZstd : MediaType.ociLayer;
  }
  return compression === "gzip" ? MediaType.dockerLayerGzip
    : compression === "zstd" ? MediaType.dockerLayerZstd : MediaType.dockerLayer;
}

/** The compression a layer media type declares, or undefined if it is not a layer type we know. */
export function compressionOfMediaType(mediaType: string): Compression | undefined {
  if (mediaType.endsWith("+gzip") || mediaType.endsWith(".tar.gzip")) return "gzip";
  if (mediaType.endsWith("+zstd") || mediaType.endsWith(".tar.zstd")) return "zstd";
  if (mediaType.endsWith(".tar") || mediaType.endsWith("diff.tar")) return "none";
  return undefined;
}

/** Whether a media type is an OCI image index or a Docker manifest list. */
export function isIndexMediaType(mt: string | undefined): boolean {
  return mt === MediaType.ociIndex || mt === MediaType.dockerManifestList;
}
