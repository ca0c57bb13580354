/**
 * The image store's commits: images and layers entering the store from a pull (or load), a build, an
 * import, or the built-in busybox image. Blobs are written to the temp area first (verified as they
 * stream), then blobs, config, manifest and names are committed in one step under the store lock, so a
 * failed commit leaves nothing new visible.
 */
import { createReadStream, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { basename } from 'node:path';
import { IntegrityError, InvalidArgumentError, NotFoundError } from '../../common/errors.js';
import { digestHex, sha256, type TempBlob } from '../layout.js';
import type { Lease } from '../lease.js';
import { parseReference, type ImageReference } from '../reference.js';
import { MEDIA_TYPE, hostArchitecture, type Descriptor, type OciImageConfigFile, type OciManifest } from '../types.js';
import { BUILTIN, nameForWrite, setName, type ImageNames, type ImageRecord } from './names.js';
import type { StoreParts } from './parts.js';
// The tar code (busybox.ts, unpack.ts) loads on first use: most commands never touch a tarball, and
// loading it costs about 20 ms of every hull invocation's start-up.
const loadUnpack = () => import('../unpack.js');
const loadBusybox = () => import('../busybox.js');

/** Changes applied to the config of an imported image (`hull import -c`). */
export interface ImportChanges {
  cmd?: string[];
  env?: string[];
  entrypoint?: string[];
  workdir?: string;
}

export class ImageCommits {
  constructor(
    private readonly s: StoreParts,
    private readonly names: ImageNames,
  ) {}

  /**
   * Make an image from a root filesystem tarball (plain, gzip or zstd, detected from its first
   * bytes; `-` reads stdin), like `docker import`. The tarball becomes the image's only layer
   * as it is; `ref` names it (an older image of that name keeps existing without the name).
   */
  async importTar(
    tarPath: string | '-',
    ref: string,
    opts: { message?: string; changes?: ImportChanges } = {},
  ): Promise<ImageRecord> {
    const target = nameForWrite(ref);
    let source: AsyncIterable<Buffer>;
    if (tarPath === '-') {
      source = process.stdin;
    } else {
      const st = statSync(tarPath, { throwIfNoEntry: false });
      if (!st) throw new NotFoundError(`cannot import ${tarPath}: no such file`);
      if (st.isDirectory())
        throw new InvalidArgumentError(
          `cannot import ${tarPath}: it is a directory; give a tar archive of it (tar -C DIR -c .)`,
        );
      source = createReadStream(tarPath, { highWaterMark: 1 << 20 });
    }
    const blob = await this.s.layout.writeTempBlob(source);
    try {
      let scan;
      try {
        const { scanLayer } = await loadUnpack();
        scan = await scanLayer(blob.path);
      } catch (e) {
        if (e instanceof (await loadUnpack()).TarFormatError) {
          throw new InvalidArgumentError(
            `cannot import ${tarPath === '-' ? 'stdin' : tarPath}: not a tar archive (plain, gzip or zstd): ${e.message}`,
          );
        }
        throw e;
      }
      const created = new Date().toISOString();
      const c = opts.changes ?? {};
      const config: OciImageConfigFile = {
        created,
        architecture: hostArchitecture(),
        os: 'linux',
        config: {
          ...(c.env ? { Env: c.env } : {}),
          ...(c.entrypoint ? { Entrypoint: c.entrypoint } : {}),
          ...(c.cmd ? { Cmd: c.cmd } : {}),
          ...(c.workdir ? { WorkingDir: c.workdir } : {}),
        },
        rootfs: { type: 'layers', diff_ids: [scan.diffId] },
        history: [
          {
            created,
            created_by: 'hull import',
            comment: opts.message ?? `imported from ${tarPath === '-' ? 'stdin' : basename(tarPath)}`,
          },
        ],
      };
      const mediaType =
        scan.compression === 'gzip'
          ? MEDIA_TYPE.layerGzip
          : scan.compression === 'zstd'
            ? MEDIA_TYPE.layerZstd
            : MEDIA_TYPE.layer;
      return await this.commitImage(blob, mediaType, config, target);
    } finally {
      await this.s.layout.discardTemp(blob);
    }
  }

  /** Build (or rebuild, getting the same id) the built-in busybox image and name it busybox:latest. */
  async ensureBuiltin(name: 'busybox'): Promise<ImageRecord> {
    if (name !== 'busybox')
      throw new InvalidArgumentError(`unknown built-in image "${name as string}": only busybox is built in`);
    const { busyboxConfig, inspectBusybox, packRootfs, writeBusyboxRootfs } = await loadBusybox();
    const bin = await inspectBusybox();
    const work = this.s.layout.temp.path('.rootfs');
    let blob: TempBlob | undefined;
    try {
      const paths = writeBusyboxRootfs(work, bin);
      blob = await this.s.layout.writeTempBlob(packRootfs(work, paths));
      // uncompressed layer: its digest is its diffID
      return await this.commitImage(blob, MEDIA_TYPE.layer, busyboxConfig(blob.digest, bin), parseReference(BUILTIN));
    } finally {
      await rm(work, { recursive: true, force: true });
      if (blob) await this.s.layout.discardTemp(blob);
    }
  }

  /**
   * Commit a pulled (or loaded) image in one step under the store lock: the layer temp blobs,
   * the config and the manifest (both kept byte for byte, so the manifest digest stays the
   * registry's), then the name. Layers not in `layers` must already be in the store. Before
   * anything is written, the manifest, config and layer set are checked against each other,
   * so a failed commit leaves nothing new visible.
   */
  async commitPulled(
    ref: ImageReference | null,
    p: { manifest: Buffer; mediaType: string; config: Buffer; layers: TempBlob[] },
  ): Promise<ImageRecord> {
    const { layout } = this.s;
    const what = ref?.display ?? 'the image';
    const manifest = JSON.parse(p.manifest.toString('utf8')) as OciManifest;
    const config = JSON.parse(p.config.toString('utf8')) as OciImageConfigFile;
    if (!manifest?.config || !Array.isArray(manifest.layers))
      throw new IntegrityError(`the manifest of ${what} is not an image manifest`);
    if (sha256(p.config) !== manifest.config.digest)
      throw new IntegrityError(
        `the config of ${what} does not match its manifest (expected ${manifest.config.digest}, got ${sha256(p.config)})`,
      );
    const diffIds = config?.rootfs?.diff_ids;
    if (!Array.isArray(diffIds) || diffIds.length !== manifest.layers.length) {
      throw new IntegrityError(
        `image ${what} is inconsistent: its config lists ${diffIds?.length ?? 0} layers, its manifest ${manifest.layers.length}`,
      );
    }
    for (const d of [...diffIds, ...manifest.layers.map((l) => l.digest)]) digestHex(d);
    const temps = new Map(p.layers.map((b) => [b.digest, b]));
    const digest = await layout.withLock(() => {
      const missing = manifest.layers.find((l) => !temps.has(l.digest) && !layout.hasBlob(l.digest));
      if (missing)
        throw new IntegrityError(
          `layer ${missing.digest} of ${what} left the store while pulling (removed by another hull?); pull again`,
        );
      for (const b of temps.values()) layout.commitBlob(b);
      layout.putBlob(p.config);
      const m = layout.putBlob(p.manifest);
      const index = layout.readIndex();
      const desc: Descriptor = {
        mediaType: p.mediaType,
        digest: m.digest,
        size: m.size,
        platform: {
          architecture: config.architecture,
          os: config.os,
          ...(config.variant ? { variant: config.variant } : {}),
        },
      };
      if (ref) setName(index, ref.full, desc);
      else if (!index.manifests.some((d) => d.digest === m.digest)) index.manifests.push(desc);
      layout.writeIndex(index);
      return m.digest;
    });
    return this.names.record(layout.readIndex(), digest);
  }

  /**
   * `hull build`: store a layer made by the builder (an uncompressed tar stream). The blob is committed
   * at once (intermediate steps need it extracted) but belongs to no image until {@link commitBuilt}.
   */
  async putBuiltLayer(
    source: AsyncIterable<Uint8Array | string>,
    lease?: Lease,
  ): Promise<{ digest: string; size: number }> {
    const { layout } = this.s;
    const blob = await layout.writeTempBlob(source);
    try {
      await layout.withLock(() => {
        layout.commitBlob(blob);
        lease?.add([blob.digest]);
      });
    } finally {
      await layout.discardTemp(blob);
    }
    return { digest: blob.digest, size: blob.size };
  }

  /**
   * `hull build`: write a built image (config, manifest over layers already in the store) and give it
   * every name in `refs` in one index update (an unnamed entry when there are none).
   */
  async commitBuilt(
    config: OciImageConfigFile,
    layers: { digest: string; size: number; mediaType: string }[],
    refs: string[],
  ): Promise<ImageRecord> {
    const { layout } = this.s;
    const targets = refs.map((r) => nameForWrite(r));
    const digest = await layout.withLock(() => {
      const missing = layers.find((l) => !layout.hasBlob(l.digest));
      if (missing)
        throw new IntegrityError(
          `layer ${missing.digest} left the store during the build (removed by hull rmi meanwhile?); build again`,
        );
      const cfg = layout.putJson(config);
      const manifest: OciManifest = {
        schemaVersion: 2,
        mediaType: MEDIA_TYPE.manifest,
        config: { mediaType: MEDIA_TYPE.config, digest: cfg.digest, size: cfg.size },
        layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
      };
      const m = layout.putJson(manifest);
      const index = layout.readIndex();
      const desc: Descriptor = {
        mediaType: MEDIA_TYPE.manifest,
        digest: m.digest,
        size: m.size,
        platform: { architecture: config.architecture, os: config.os },
      };
      for (const t of targets) setName(index, t.full, desc);
      if (targets.length === 0 && !index.manifests.some((d) => d.digest === m.digest)) index.manifests.push(desc);
      layout.writeIndex(index);
      return m.digest;
    });
    return this.names.record(layout.readIndex(), digest);
  }

  /** Store a one-layer image: layer blob, config, manifest, and the name in the index. */
  private async commitImage(
    layer: TempBlob,
    layerMediaType: string,
    config: OciImageConfigFile,
    ref: ImageReference,
  ): Promise<ImageRecord> {
    const { layout } = this.s;
    const digest = await layout.withLock(() => {
      layout.commitBlob(layer);
      const cfg = layout.putJson(config);
      const manifest: OciManifest = {
        schemaVersion: 2,
        mediaType: MEDIA_TYPE.manifest,
        config: { mediaType: MEDIA_TYPE.config, digest: cfg.digest, size: cfg.size },
        layers: [{ mediaType: layerMediaType, digest: layer.digest, size: layer.size }],
      };
      const m = layout.putJson(manifest);
      const index = layout.readIndex();
      setName(index, ref.full, {
        mediaType: MEDIA_TYPE.manifest,
        digest: m.digest,
        size: m.size,
        platform: { architecture: config.architecture, os: config.os },
      });
      layout.writeIndex(index);
      return m.digest;
    });
    return this.names.record(layout.readIndex(), digest);
  }
}
