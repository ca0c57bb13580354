/**
 * The image store's names and index: index.json has one descriptor per name, annotated with
 * `org.opencontainers.image.ref.name` = the full normalized reference (`docker.io/library/busybox:latest`,
 * see ../reference.ts). An image that loses its last name to a newer image (import or tag over an existing
 * name) stays in the index as a descriptor without a name (docker's dangling `<none>` image), so instances
 * made from it keep working. This part looks names and ids up, builds an image's record from its blobs,
 * and edits names in an index; writing the index and collecting garbage are the callers' (under the lock).
 */
import { readFileSync } from 'node:fs';
import { ConflictError, IntegrityError, InvalidArgumentError, NotFoundError } from '../../common/errors.js';
import { digestHex } from '../layout.js';
import { looksLikeId, parseReference, shortName, type ImageReference } from '../reference.js';
import {
  MEDIA_TYPE,
  REF_NAME_ANNOTATION,
  type Descriptor,
  type OciImageConfigFile,
  type OciIndex,
  type OciManifest,
} from '../types.js';
import type { StoreParts } from './parts.js';

/** One local image: a manifest in the index, its config, its names. */
export interface ImageRecord {
  /** `sha256:<hex>` digest of the image config blob */
  id: string;
  manifestDigest: string;
  /** display forms of the names that point at it (`busybox:latest`); empty for a dangling image */
  names: string[];
  /** the parsed config blob */
  config: OciImageConfigFile;
  /** ISO time from the config (`1970-01-01T00:00:00Z` for the built-in image) */
  created: string;
  /** sum of the layer blob sizes */
  size: number;
  /** lowest layer first */
  layers: { digest: string; diffId: string; size: number; mediaType: string }[];
}

/** The name of the built-in image, made from the host's busybox when asked for and absent. */
export const BUILTIN = 'docker.io/library/busybox:latest';

/** The name annotation of an index descriptor, if any. */
export function refName(d: Descriptor): string | undefined {
  return d.annotations?.[REF_NAME_ANNOTATION];
}

/** Display form of a stored full name (`docker.io/library/busybox:latest` → `busybox:latest`). */
export function displayName(full: string): string {
  const at = full.indexOf('@');
  const repoTag = at >= 0 ? full.slice(0, at) : full;
  const colon = repoTag.lastIndexOf(':');
  const repo = colon > repoTag.lastIndexOf('/') ? repoTag.slice(0, colon) : repoTag;
  return shortName(repo) + full.slice(repo.length);
}

/** Repository part of a stored full name (no tag, no digest); undefined when the name is malformed. */
function repositoryOf(full: string): string | undefined {
  try {
    return parseReference(full).name;
  } catch {
    return undefined;
  }
}

/** Parse a reference that is about to name an image. */
export function nameForWrite(ref: string): ImageReference {
  const parsed = parseReference(ref);
  if (parsed.digest) throw new InvalidArgumentError(`cannot name an image ${ref}: a name takes a tag, not a digest`);
  if (/^[a-f0-9]{64}$/.test(parsed.name.split('/').pop()!)) {
    throw new InvalidArgumentError(`cannot name an image ${ref}: 64 hex digits would read as an image id`);
  }
  return parsed;
}

/**
 * Point `full` at the manifest `desc` in `index`. The image that had the name stays in the
 * index without a name when it has no other; a nameless entry of the new image goes away.
 */
export function setName(index: OciIndex, full: string, desc: Descriptor): void {
  const previous = index.manifests.find((d) => refName(d) === full);
  if (previous?.digest === desc.digest) return;
  index.manifests = index.manifests.filter(
    (d) => refName(d) !== full && !(d.digest === desc.digest && refName(d) === undefined),
  );
  const { annotations: _drop, ...plain } = desc;
  index.manifests.push({ ...plain, annotations: { [REF_NAME_ANNOTATION]: full } });
  if (previous && !index.manifests.some((d) => d.digest === previous.digest)) {
    const { annotations: _old, ...dangling } = previous;
    index.manifests.push(dangling);
  }
}

/** Where a lookup landed: the manifest, and the name it matched (absent for an id match). */
interface Match {
  digest: string;
  name?: string;
}

/** Lookups in the index and the records of images (reads take no lock: index.json is replaced atomically). */
export class ImageNames {
  constructor(private readonly s: StoreParts) {}

  /**
   * The record `ref` names (name[:tag], name@digest, full id or unique id prefix of 3+ hex digits), or
   * null when it names none; `builtin` is true when it names the built-in image (made by the caller).
   */
  lookup(ref: string): { record: ImageRecord } | { record: null; builtin: boolean } {
    const index = this.s.layout.readIndex();
    const match = this.find(index, ref);
    if (match) return { record: this.record(index, match.digest) };
    let parsed: ImageReference | undefined;
    try {
      parsed = parseReference(ref);
    } catch (e) {
      if (!looksLikeId(ref)) throw e;
    }
    return { record: null, builtin: parsed?.full === BUILTIN };
  }

  /** The error for a reference that names no image. */
  notFound(ref: string): NotFoundError {
    let parsed: ImageReference | undefined;
    try {
      parsed = parseReference(ref);
    } catch {
      /* an id */
    }
    const hint = parsed && !looksLikeId(ref) ? `hull import FILE ${ref} creates it; ` : '';
    return new NotFoundError(`image not found: ${ref} (${hint}hull images lists the images there are)`);
  }

  /**
   * Every image in the store, one record per manifest, in index order. An entry whose blobs
   * cannot be read is left out (and reported through onWarning); rmi can still remove it.
   */
  list(): ImageRecord[] {
    const index = this.s.layout.readIndex();
    const seen = new Set<string>();
    const out: ImageRecord[] = [];
    for (const d of index.manifests) {
      if (seen.has(d.digest)) continue;
      seen.add(d.digest);
      try {
        out.push(this.record(index, d.digest));
      } catch (e) {
        this.s.warn(`skipping image ${refName(d) ?? d.digest}: ${(e as Error).message}`);
      }
    }
    return out;
  }

  /** Under the lock: give the image (by manifest digest) the name `target` in the index. */
  tagLocked(manifestDigest: string, src: string, target: ImageReference): void {
    const index = this.s.layout.readIndex();
    const current = index.manifests.find((d) => d.digest === manifestDigest);
    if (!current) throw new NotFoundError(`image not found: ${src} (it was removed meanwhile)`);
    setName(index, target.full, current);
    this.s.layout.writeIndex(index);
  }

  /**
   * Under the lock, rmi's part in the index: by name, remove that name; by id, remove the image's names
   * (several only with `force`). An image left without names leaves the index, unless `inUse` has it (it
   * stays, dangling, as docker does). Returns docker-style lines (`Untagged: ...`, `Deleted: ...`); the
   * caller collects the garbage.
   */
  removeLocked(ref: string, opts: { force?: boolean; inUse?: () => Set<string> }): string[] {
    const index = this.s.layout.readIndex();
    const match = this.find(index, ref);
    if (!match) throw new NotFoundError(`image not found: ${ref} (hull images lists the images there are)`);
    const lines: string[] = [];
    const image = this.recordOrStub(index, match.digest);
    if (match.name !== undefined) {
      index.manifests = index.manifests.filter((d) => !(d.digest === match.digest && refName(d) === match.name));
      lines.push(`Untagged: ${displayName(match.name)}`);
      // a name was the last one: drop the image rather than keep it dangling
      if (!index.manifests.some((d) => d.digest === match.digest && refName(d) !== undefined)) {
        index.manifests = index.manifests.filter((d) => d.digest !== match.digest);
      }
    } else {
      if (image.names.length > 1 && !opts.force) {
        throw new ConflictError(
          `image ${ref} has several names (${image.names.join(', ')}): remove them one by one, or use --force to remove all`,
        );
      }
      for (const n of image.names) lines.push(`Untagged: ${n}`);
      index.manifests = index.manifests.filter((d) => d.digest !== match.digest);
    }
    const gone = !index.manifests.some((d) => d.digest === match.digest);
    if (gone && opts.inUse?.().has(image.id)) {
      // an instance still uses it (rmi -f): it loses its names but stays, dangling, as docker does
      const desc = this.s.layout.readIndex().manifests.find((d) => d.digest === match.digest)!;
      const { annotations: _names, ...dangling } = desc;
      index.manifests.push(dangling);
    } else if (gone) {
      lines.push(`Deleted: ${image.id}`);
    }
    this.s.layout.writeIndex(index);
    return lines;
  }

  /** An image's stored manifest, byte for byte, with its media type (for push and save). */
  manifestOf(record: ImageRecord): { record: ImageRecord; manifest: OciManifest; bytes: Buffer; mediaType: string } {
    const bytes = readFileSync(this.s.layout.blobPath(record.manifestDigest));
    const manifest = this.manifest(record.manifestDigest);
    const entry = this.s.layout.readIndex().manifests.find((d) => d.digest === record.manifestDigest);
    return { record, manifest, bytes, mediaType: manifest.mediaType ?? entry?.mediaType ?? MEDIA_TYPE.manifest };
  }

  /** Look `ref` up in `index`: by name, then by id or id prefix. Null when nothing matches. */
  find(index: OciIndex, ref: string): Match | null {
    let parsed: ImageReference | undefined;
    try {
      parsed = parseReference(ref);
    } catch (e) {
      if (!looksLikeId(ref)) throw e;
    }
    if (parsed && !parsed.digest) {
      const d = index.manifests.find((m) => refName(m) === parsed!.full);
      if (d) return { digest: d.digest, name: parsed.full };
    }
    if (parsed?.digest) {
      const d = index.manifests.find(
        (m) => m.digest === parsed!.digest && refName(m) !== undefined && repositoryOf(refName(m)!) === parsed!.name,
      );
      if (d) return { digest: d.digest };
    }
    if (!looksLikeId(ref)) return null;
    const prefix = ref.startsWith('sha256:') ? ref : `sha256:${ref}`;
    const hits = new Map<string, string>(); // manifest digest → config id
    for (const d of index.manifests) {
      if (hits.has(d.digest)) continue;
      let id: string;
      try {
        id = this.manifest(d.digest).config.digest;
      } catch {
        id = d.digest; // an unreadable entry can still be named by its manifest digest (to remove it)
      }
      if (id.startsWith(prefix)) hits.set(d.digest, id);
    }
    const ids = new Set(hits.values());
    if (ids.size > 1) {
      throw new InvalidArgumentError(
        `image id prefix ${ref} is ambiguous: it matches ${[...ids].map((i) => i.slice(7, 19)).join(', ')}; give more digits`,
      );
    }
    const first = hits.keys().next();
    return first.done ? null : { digest: first.value };
  }

  manifest(digest: string): OciManifest {
    const m = this.s.layout.readJson<OciManifest>(digest);
    if (!m || typeof m !== 'object' || !m.config || !Array.isArray(m.layers)) {
      throw new IntegrityError(`blob ${digest} in the image index is not an image manifest; remove it with hull rmi`);
    }
    return m;
  }

  /** Build the record of manifest `digest` (names from `index`, the current one when not given). */
  record(index: OciIndex, digest: string): ImageRecord {
    const manifest = this.manifest(digest);
    const config = this.s.layout.readJson<OciImageConfigFile>(manifest.config.digest);
    const diffIds = config?.rootfs?.diff_ids;
    if (!Array.isArray(diffIds) || diffIds.length !== manifest.layers.length) {
      throw new IntegrityError(
        `image ${manifest.config.digest} is inconsistent: its config lists ${diffIds?.length ?? 0} layers, its manifest ${manifest.layers.length}; remove it and import it again`,
      );
    }
    const layers = manifest.layers.map((l, i) => {
      digestHex(l.digest);
      digestHex(diffIds[i]!);
      return { digest: l.digest, diffId: diffIds[i]!, size: l.size, mediaType: l.mediaType };
    });
    const names = index.manifests
      .filter((d) => d.digest === digest)
      .map(refName)
      .filter((n): n is string => n !== undefined)
      .map(displayName);
    return {
      id: manifest.config.digest,
      manifestDigest: digest,
      names,
      config,
      created: config.created ?? '',
      size: layers.reduce((sum, l) => sum + l.size, 0),
      layers,
    };
  }

  /** The record, or for an entry whose blobs are unreadable, enough of one to remove it. */
  recordOrStub(index: OciIndex, digest: string): Pick<ImageRecord, 'id' | 'names'> {
    try {
      return this.record(index, digest);
    } catch {
      const names = index.manifests
        .filter((d) => d.digest === digest)
        .map(refName)
        .filter((n): n is string => n !== undefined);
      return { id: digest, names: names.map(displayName) };
    }
  }
}
