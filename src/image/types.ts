/**
 * The OCI image-spec types hull stores and reads (image-spec v1.1: descriptor, image index,
 * image manifest, image config, image layout). Only the fields hull uses or writes are typed;
 * unknown fields in stored JSON are kept as they are because blobs are never rewritten.
 */

/** Media types hull writes, and the docker ones it may meet in layouts written by other tools. */
export const MEDIA_TYPE = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  layerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

/** The annotation on index.json entries that names the image (OCI image-layout). */
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

/** A content descriptor: what a blob is, its digest and size. */
export interface Descriptor {
  mediaType: string;
  /** 'sha256:<64 hex>' */
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string; variant?: string };
}

/** index.json of an image layout (also the media type of multi-platform indexes). */
export interface OciIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** An image manifest: one config blob and the layer blobs, lowest layer first. */
export interface OciManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

/** The execution parameters of an image config (`config` inside the config blob). */
export interface OciImageRuntimeConfig {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, object>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  /** HEALTHCHECK: Test ['CMD', ...] / ['CMD-SHELL', text] / ['NONE']; durations in nanoseconds, 0 = default */
  Healthcheck?: { Test?: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; Retries?: number };
}

/** One step of an image's history. `empty_layer` steps have no layer in rootfs.diff_ids. */
export interface OciHistory {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

/** The image config blob (application/vnd.oci.image.config.v1+json). */
export interface OciImageConfigFile {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  variant?: string;
  config?: OciImageRuntimeConfig;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: OciHistory[];
}

/** Content of the `oci-layout` file. */
export interface OciLayoutFile {
  imageLayoutVersion: string;
}

/** Node's process.arch names → OCI/Go architecture names. */
const OCI_ARCH: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips: 'mips',
  mipsel: 'mipsle',
};

/** The host's architecture as OCI names it (amd64, arm64, ...). */
export function hostArchitecture(): string {
  return OCI_ARCH[process.arch] ?? process.arch;
}
