/**
 * Image archives: `hull save` and `hull load`, in the two formats other tools read and write.
 *
 * - oci-archive: a tar of an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/...`);
 *   the manifests and blobs are hull's own, byte for byte; each index.json entry carries the
 *   image's name in `org.opencontainers.image.ref.name`.
 * - docker-archive: docker's `docker save` format: `manifest.json`
 *   (`[{"Config": "<hex>.json", "RepoTags": [...], "Layers": ["<diffID hex>/layer.tar", ...]}]`),
 *   the config files and the layers as uncompressed tars (gzip layers are decompressed).
 *
 * Both are staged in the store's temp area (blobs hard-linked, not copied) and written with
 * node-tar. `load` extracts regular files only into the temp area, verifies every blob's digest
 * while copying it into the store's temp area, and commits each image like a pull does.
 */
import {
  createReadStream,
  createWriteStream,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  copyFileSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import { rm } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { create, extract } from 'tar';
import { InvalidArgumentError, IntegrityError, NotFoundError } from '../common/errors.js';
import { digestHex, sha256, type TempBlob } from './layout.js';
import { parseReference, type ImageReference } from './reference.js';
import type { ImageRecord, ImageStore } from './store.js';
import {
  MEDIA_TYPE,
  REF_NAME_ANNOTATION,
  hostArchitecture,
  type Descriptor,
  type OciIndex,
  type OciManifest,
} from './types.js';

export type ArchiveFormat = 'oci-archive' | 'docker-archive';

const INDEX_TYPES = new Set([
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]);

function isGzip(path: string): boolean {
  const head = readFileSync(path).subarray(0, 2);
  return head[0] === 0x1f && head[1] === 0x8b;
}

/** Write `refs` (local images) to `file` (atomically) or to a stream (e.g. stdout) as an archive of `format`. */
export async function saveImages(
  store: ImageStore,
  refs: string[],
  file: string | NodeJS.WritableStream,
  format: ArchiveFormat,
): Promise<void> {
  if (refs.length === 0) throw new InvalidArgumentError('hull save needs at least one image');
  const stage = store.tempPath('.save');
  mkdirSync(stage, { recursive: true, mode: 0o700 });
  const link = (from: string, to: string) => {
    if (existsSync(to)) return;
    try {
      linkSync(from, to);
    } catch {
      copyFileSync(from, to);
    }
  };
  try {
    const images = [];
    for (const ref of refs) images.push({ ref, ...(await store.manifestOf(ref)) });
    if (format === 'oci-archive') {
      mkdirSync(join(stage, 'blobs', 'sha256'), { recursive: true });
      writeFileSync(join(stage, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
      const index: OciIndex = { schemaVersion: 2, mediaType: MEDIA_TYPE.index, manifests: [] };
      for (const img of images) {
        for (const d of [
          img.record.manifestDigest,
          img.manifest.config.digest,
          ...img.manifest.layers.map((l) => l.digest),
        ]) {
          link(store.blobPath(d), join(stage, 'blobs', 'sha256', digestHex(d)));
        }
        const name = nameFor(img.ref, img.record);
        index.manifests.push({
          mediaType: img.mediaType,
          digest: img.record.manifestDigest,
          size: img.bytes.length,
          platform: { architecture: img.record.config.architecture, os: img.record.config.os },
          ...(name ? { annotations: { [REF_NAME_ANNOTATION]: name.full } } : {}),
        });
      }
      writeFileSync(join(stage, 'index.json'), JSON.stringify(index));
      await writeTar(stage, file, ['oci-layout', 'index.json', 'blobs']);
    } else {
      const manifest: { Config: string; RepoTags: string[] | null; Layers: string[] }[] = [];
      const entries = new Set<string>();
      for (const img of images) {
        const configName = `${digestHex(img.manifest.config.digest)}.json`;
        link(store.blobPath(img.manifest.config.digest), join(stage, configName));
        entries.add(configName);
        const layers: string[] = [];
        for (const [i, l] of img.manifest.layers.entries()) {
          const diffId = img.record.layers[i]!.diffId;
          const dir = join(stage, digestHex(diffId));
          const target = join(dir, 'layer.tar');
          mkdirSync(dir, { recursive: true });
          if (!existsSync(target)) {
            if (isGzip(store.blobPath(l.digest)))
              await pipeline(createReadStream(store.blobPath(l.digest)), createGunzip(), createWriteStream(target));
            else link(store.blobPath(l.digest), target);
          }
          layers.push(`${digestHex(diffId)}/layer.tar`);
          entries.add(digestHex(diffId));
        }
        const name = nameFor(img.ref, img.record);
        manifest.push({ Config: configName, RepoTags: name && name.tag ? [name.display] : null, Layers: layers });
      }
      writeFileSync(join(stage, 'manifest.json'), JSON.stringify(manifest));
      await writeTar(stage, file, ['manifest.json', ...entries]);
    }
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

/** The name to record for `ref` in an archive: the reference as given when it names the image, else the image's first name. */
function nameFor(ref: string, record: ImageRecord): ImageReference | undefined {
  try {
    const parsed = parseReference(ref);
    if (!parsed.digest && record.names.some((n) => parseReference(n).full === parsed.full)) return parsed;
  } catch {
    /* an id */
  }
  return record.names[0] ? parseReference(record.names[0]) : undefined;
}

async function writeTar(cwd: string, file: string | NodeJS.WritableStream, entries: string[]): Promise<void> {
  if (typeof file !== 'string') {
    // the stream stays open (stdout): the caller ends it
    await pipeline(create({ cwd, portable: true, noMtime: true }, entries) as unknown as NodeJS.ReadableStream, file, {
      end: false,
    });
    return;
  }
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    await create({ file: tmp, cwd, portable: true, noMtime: true }, entries);
    renameSync(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** A path named inside an archive, resolved within `dir` and required to be a regular file. */
function fileIn(dir: string, name: string, what: string): string {
  const p = resolve(dir, name);
  if (!p.startsWith(dir + sep)) throw new IntegrityError(`the archive's ${what} names a path outside it: ${name}`);
  let ok = false;
  try {
    ok = lstatSync(p).isFile();
  } catch {
    /* missing */
  }
  if (!ok) throw new IntegrityError(`the archive lacks ${what} ${name}`);
  return p;
}

/** Load every image of the archive `source`, a file or a stream (stdin), in either format. Returns the loaded images. */
export async function loadImages(
  store: ImageStore,
  source: string | NodeJS.ReadableStream,
): Promise<{ record: ImageRecord; name?: string }[]> {
  const file = typeof source === 'string' ? source : 'the archive on stdin';
  if (typeof source === 'string' && !existsSync(source)) throw new NotFoundError(`archive not found: ${source}`);
  const stage = store.tempPath('.load');
  mkdirSync(stage, { recursive: true, mode: 0o700 });
  try {
    try {
      const opts = {
        cwd: stage,
        filter: (_p: string, e: unknown) =>
          !!e &&
          typeof e === 'object' &&
          'type' in e &&
          (e.type === 'File' || e.type === 'OldFile' || e.type === 'Directory'),
        strict: true,
      };
      if (typeof source === 'string') await extract({ ...opts, file: source });
      else {
        let n = 0;
        source.on('data', (c: Buffer) => {
          n += c.length;
        });
        await pipeline(source, extract(opts) as unknown as NodeJS.WritableStream).catch((e: unknown) => {
          // docker's words
          if (n === 0) throw new InvalidArgumentError('requested load from stdin, but stdin is empty');
          throw e;
        });
      }
    } catch (e) {
      if (e instanceof InvalidArgumentError) throw e;
      throw new IntegrityError(`${file} is not a readable tar archive: ${(e as Error).message}`);
    }
    try {
      if (existsSync(join(stage, 'oci-layout'))) return await loadOci(store, stage);
      if (existsSync(join(stage, 'manifest.json'))) return await loadDocker(store, stage);
    } catch (e) {
      if (e instanceof IntegrityError)
        throw new IntegrityError(`cannot load ${file}: ${e.message}; the archive is damaged`);
      if (e instanceof SyntaxError)
        throw new IntegrityError(`cannot load ${file}: a JSON file in it is invalid (${e.message})`);
      throw e;
    }
    throw new InvalidArgumentError(
      `${file} is neither an oci-archive (no oci-layout) nor a docker-archive (no manifest.json)`,
    );
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

/** Copy the archive's blob into the store's temp area, verifying its digest. */
async function tempBlob(store: ImageStore, path: string, digest: string): Promise<TempBlob> {
  return store.writeTempBlob(createReadStream(path), digest);
}

async function loadOci(store: ImageStore, dir: string): Promise<{ record: ImageRecord; name?: string }[]> {
  const blob = (d: string) => fileIn(dir, join('blobs', 'sha256', digestHex(d)), 'blob');
  const readVerified = (d: string) => {
    const bytes = readFileSync(blob(d));
    if (sha256(bytes) !== d) throw new IntegrityError(`blob ${d} in the archive has digest ${sha256(bytes)}`);
    return bytes;
  };
  const index = JSON.parse(readFileSync(fileIn(dir, 'index.json', 'index'), 'utf8')) as OciIndex;
  const out: { record: ImageRecord; name?: string }[] = [];
  for (const entry of index.manifests ?? []) {
    let desc: Descriptor = entry;
    if (INDEX_TYPES.has(desc.mediaType)) {
      const nested = JSON.parse(readVerified(desc.digest).toString('utf8')) as OciIndex;
      const pick =
        nested.manifests.find((d) => d.platform?.os === 'linux' && d.platform.architecture === hostArchitecture()) ??
        nested.manifests[0];
      if (!pick) continue;
      desc = pick;
    }
    const manifestBytes = readVerified(desc.digest);
    const manifest = JSON.parse(manifestBytes.toString('utf8')) as OciManifest;
    const config = readVerified(manifest.config.digest);
    const rawName = entry.annotations?.[REF_NAME_ANNOTATION];
    let ref: ImageReference | null = null;
    if (rawName) {
      try {
        ref = parseReference(rawName);
      } catch {
        ref = null;
      } // a bare tag ("latest") names nothing here
      if (ref?.digest) ref = null;
    }
    const temps: TempBlob[] = [];
    try {
      for (const l of manifest.layers)
        if (!store.hasBlob(l.digest) && !temps.some((t) => t.digest === l.digest))
          temps.push(await tempBlob(store, blob(l.digest), l.digest));
      const record = await store.commitPulled(ref, {
        manifest: manifestBytes,
        mediaType: manifest.mediaType ?? desc.mediaType ?? MEDIA_TYPE.manifest,
        config,
        layers: temps,
      });
      out.push({ record, ...(ref ? { name: ref.display } : {}) });
    } finally {
      for (const t of temps) await store.discardTemp(t);
    }
  }
  return out;
}

async function loadDocker(store: ImageStore, dir: string): Promise<{ record: ImageRecord; name?: string }[]> {
  const entries = JSON.parse(readFileSync(fileIn(dir, 'manifest.json', 'manifest'), 'utf8')) as {
    Config: string;
    RepoTags?: string[] | null;
    Layers: string[];
  }[];
  if (!Array.isArray(entries)) throw new IntegrityError("the archive's manifest.json is not a list");
  const out: { record: ImageRecord; name?: string }[] = [];
  for (const entry of entries) {
    const config = readFileSync(fileIn(dir, entry.Config, 'config'));
    const temps: TempBlob[] = [];
    try {
      const layers: Descriptor[] = [];
      for (const name of entry.Layers) {
        const path = fileIn(dir, name, 'layer');
        const t = await store.writeTempBlob(createReadStream(path));
        temps.push(t);
        layers.push({
          mediaType: isGzip(t.path) ? MEDIA_TYPE.layerGzip : MEDIA_TYPE.layer,
          digest: t.digest,
          size: t.size,
        });
      }
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MEDIA_TYPE.manifest,
          config: { mediaType: MEDIA_TYPE.config, digest: sha256(config), size: config.length },
          layers,
        }),
      );
      const tags = entry.RepoTags ?? [];
      let record = await store.commitPulled(tags[0] ? parseReference(tags[0]) : null, {
        manifest,
        mediaType: MEDIA_TYPE.manifest,
        config,
        layers: temps,
      });
      for (const t of tags.slice(1)) await store.tag(record.id, t);
      if (tags.length > 1) record = await store.resolve(record.id);
      out.push({ record, ...(tags[0] ? { name: parseReference(tags[0]).display } : {}) });
    } finally {
      for (const t of temps) await store.discardTemp(t);
    }
  }
  return out;
}
