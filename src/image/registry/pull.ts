/**
 * `hull pull`: resolve a reference on its registry (an index or manifest list picks the
 * platform: the host's, or `--platform os/arch[/variant]`), download the config and the layers
 * the store lacks (a few at a time, each streamed into the store's temp area and verified
 * against its digest), then commit everything and the name in one locked step. Until that
 * step nothing is visible in the store; on any failure the temp blobs are removed.
 */
import { InvalidArgumentError, IntegrityError, NotFoundError, RegistryError } from '../../common/errors.js';
import { sha256, type TempBlob } from '../layout.js';
import { parseReference } from '../reference.js';
import type { ImageRecord, ImageStore } from '../store.js';
import { hostArchitecture, MEDIA_TYPE, type Descriptor, type OciIndex, type OciManifest } from '../types.js';
import { MANIFEST_TYPES, clientFor, type RegistryClient } from './client.js';
import type { CredentialStore } from './credentials.js';

/** What pull and push report while they work (the CLI draws it). */
export type TransferEvent =
  | { kind: 'resolved'; ref: string; digest: string }
  | { kind: 'blob'; digest: string; size: number; done: number; state: 'waiting' | 'exists' | 'mounted' | 'transferring' | 'retrying' | 'done' };

export interface PullOptions {
  /** `os/arch[/variant]`; default the host's */
  platform?: string;
  /** plain HTTP for this registry (`--tls-verify=false`) */
  insecure?: boolean;
  credentials?: CredentialStore;
  onEvent?: (e: TransferEvent) => void;
  /** layers downloaded at once (default 3) */
  concurrency?: number;
  /** attempts per request and per blob (default 4) */
  attempts?: number;
  backoffMs?: number;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** Layer media types hull can unpack. */
const LAYER_TYPES = new Set<string>([MEDIA_TYPE.layer, MEDIA_TYPE.layerGzip, MEDIA_TYPE.layerZstd, MEDIA_TYPE.dockerLayerGzip, 'application/vnd.docker.image.rootfs.diff.tar']);
const CONFIG_LIMIT = 8 * 1024 * 1024;

/** Parse `os/arch[/variant]`. */
export function parsePlatform(text: string): Platform {
  const parts = text.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]+$/.test(p))) {
    throw new InvalidArgumentError(`invalid platform "${text}": expected os/arch[/variant], e.g. linux/amd64 or linux/arm/v7`);
  }
  return { os: parts[0]!, architecture: parts[1]!, ...(parts[2] ? { variant: parts[2] } : {}) };
}

/** The host's platform. */
export function hostPlatform(): Platform {
  const architecture = hostArchitecture();
  return { os: 'linux', architecture, ...(architecture === 'arm' ? { variant: 'v7' } : {}) };
}

const defaultVariant = (arch: string): string | undefined => (arch === 'arm64' ? 'v8' : undefined);

/** The index entry for `want`: same os and architecture, and variant when one is asked for. */
export function choosePlatform(index: OciIndex, want: Platform, explicitVariant: boolean): Descriptor | undefined {
  const candidates = index.manifests.filter((d) => d.platform && d.platform.os === want.os && d.platform.architecture === want.architecture);
  if (want.variant) {
    const exact = candidates.find((d) => (d.platform!.variant ?? defaultVariant(d.platform!.architecture)) === want.variant);
    if (exact || explicitVariant) return exact;
  }
  return candidates[0];
}

const platformText = (p: Platform) => [p.os, p.architecture, p.variant].filter(Boolean).join('/');

/** Run `fn` over `items` with at most `limit` at once; the first failure is thrown after all have settled. */
export async function parallel<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { e: unknown } | undefined;
  const worker = async () => {
    while (next < items.length && !failure) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (e) {
        failure ??= { e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.e;
}

/**
 * The image manifest `ref` names on its registry, for this host's platform (or `platform`): an index or
 * manifest list is walked down to the platform's entry. Throws when there is none or it is of a type hull
 * cannot use.
 */
async function resolveManifest(client: RegistryClient, repo: string, ref: { digest?: string; tag: string }, display: string, platform: string | undefined) {
  let fetched = await client.getManifest(repo, ref.digest ?? ref.tag, display);
  const isIndex = (t: string) => t === MANIFEST_TYPES.ociIndex || t === MANIFEST_TYPES.dockerList;
  // an index picks the platform; an entry may be an index itself (nested indexes, e.g. per OS version):
  // go down a few levels, taking a platform-less nested index when no entry names the platform
  for (let depth = 0; isIndex(fetched.mediaType); depth++) {
    if (depth >= 4) throw new RegistryError(`image ${display}: indexes nested more than 4 deep; hull stops there`);
    const index = JSON.parse(fetched.bytes.toString('utf8')) as OciIndex;
    const want = platform ? parsePlatform(platform) : hostPlatform();
    const chosen = choosePlatform(index, want, !!platform && want.variant !== undefined)
      ?? (index.manifests ?? []).find((d) => !d.platform && isIndex(d.mediaType));
    if (!chosen) {
      const has = (index.manifests ?? []).map((d) => d.platform).filter((p): p is Platform => !!p && p.os !== 'unknown').map(platformText);
      throw new NotFoundError(`image ${display} has no variant for platform ${platformText(want)} (it has: ${has.join(', ') || 'none'}); choose one with --platform`);
    }
    fetched = await client.getManifest(repo, chosen.digest, `${display}@${chosen.digest}`);
  }
  if (fetched.mediaType !== MANIFEST_TYPES.ociManifest && fetched.mediaType !== MANIFEST_TYPES.dockerManifest) {
    throw new RegistryError(`image ${display} has a manifest of type ${fetched.mediaType || 'unknown'}, which hull cannot use (it reads OCI and docker schema 2 manifests)`);
  }
  return fetched;
}

function target(refText: string) {
  const ref = parseReference(refText);
  const registry = ref.name.slice(0, ref.name.indexOf('/'));
  const repo = ref.name.slice(registry.length + 1);
  const display = ref.display.startsWith(registry) ? ref.display : `${registry}/${ref.display}`;
  return { ref, registry, repo, display };
}

/**
 * The digest of the manifest a pull of `refText` would store (the platform's, under an index), without
 * downloading anything else: what `--pull newer` compares with the local image's manifest digest.
 */
export async function remoteManifestDigest(refText: string, opts: PullOptions = {}): Promise<string> {
  const { ref, registry, repo, display } = target(refText);
  return (await resolveManifest(clientFor(registry, opts), repo, ref, display, opts.platform)).digest;
}

/** Pull `refText` into `store` and name it; returns the stored image. */
export async function pullImage(store: ImageStore, refText: string, opts: PullOptions = {}): Promise<ImageRecord> {
  const { ref, registry, repo, display } = target(refText);
  const client = clientFor(registry, opts);
  const emit = opts.onEvent ?? (() => { /* quiet */ });
  const fetched = await resolveManifest(client, repo, ref, display, opts.platform);
  emit({ kind: 'resolved', ref: display, digest: fetched.digest });
  const manifest = JSON.parse(fetched.bytes.toString('utf8')) as OciManifest;
  if (!manifest.config?.digest || !Array.isArray(manifest.layers)) throw new RegistryError(`the manifest of ${display} has no config or layers`);
  for (const l of manifest.layers) {
    if (!LAYER_TYPES.has(l.mediaType)) throw new RegistryError(`image ${display} has a layer of type ${l.mediaType}, which hull cannot unpack (it reads plain, gzip and zstd tar layers)`);
  }

  // the config: small, read into memory and verified
  if (manifest.config.size > CONFIG_LIMIT) throw new RegistryError(`the config of ${display} is larger than ${CONFIG_LIMIT} bytes`);
  const configRes = await client.getBlob(repo, manifest.config.digest);
  const config = Buffer.from(await configRes.arrayBuffer());
  if (sha256(config) !== manifest.config.digest) {
    throw new IntegrityError(`registry ${registry} sent a config for ${display} whose digest is ${sha256(config)}, not ${manifest.config.digest}; nothing was stored`);
  }

  const temps: TempBlob[] = [];
  try {
    const todo: Descriptor[] = [];
    const seen = new Set<string>();
    for (const l of manifest.layers) {
      if (seen.has(l.digest)) continue;
      seen.add(l.digest);
      if (store.hasBlob(l.digest)) emit({ kind: 'blob', digest: l.digest, size: l.size, done: l.size, state: 'exists' });
      else {
        todo.push(l);
        emit({ kind: 'blob', digest: l.digest, size: l.size, done: 0, state: 'waiting' });
      }
    }
    const attempts = Math.max(1, opts.attempts ?? 4);
    await parallel(todo, opts.concurrency ?? 3, async (layer) => {
      for (let attempt = 1; ; attempt++) {
        try {
          temps.push(await downloadBlob(store, client, repo, layer, emit));
          emit({ kind: 'blob', digest: layer.digest, size: layer.size, done: layer.size, state: 'done' });
          return;
        } catch (e) {
          // a dropped connection mid-body is retried; a digest mismatch or a refusal is not
          const transient = !(e instanceof IntegrityError) && !(e instanceof RegistryError) && !(e instanceof NotFoundError) && !((e as { code?: string }).code ?? '').startsWith('HULL_');
          if (!transient || attempt >= attempts) {
            if (transient) throw new RegistryError(`downloading layer ${layer.digest} of ${display} from registry ${registry} failed ${attempt} times: ${(e as Error).message}`);
            if (e instanceof IntegrityError) throw new IntegrityError(`registry ${registry} sent layer ${layer.digest} of ${display} with the wrong content (${e.message}); nothing was stored`);
            throw e;
          }
          emit({ kind: 'blob', digest: layer.digest, size: layer.size, done: 0, state: 'retrying' });
          await new Promise((r) => setTimeout(r, (opts.backoffMs ?? 250) * 2 ** (attempt - 1)));
        }
      }
    });
    return await store.commitPulled(ref, { manifest: fetched.bytes, mediaType: fetched.mediaType, config, layers: temps });
  } finally {
    for (const t of temps) await store.discardTemp(t);
  }
}

/** Stream one blob into the store's temp area, verified against its digest. */
async function downloadBlob(store: ImageStore, client: RegistryClient, repo: string, layer: Descriptor, emit: (e: TransferEvent) => void): Promise<TempBlob> {
  const body = await client.streamBlob(repo, layer.digest);
  let done = 0;
  let last = 0;
  async function* counted(): AsyncIterable<Uint8Array> {
    for await (const chunk of body) {
      done += chunk.length;
      if (done > layer.size) throw new IntegrityError(`blob ${layer.digest} is larger than the ${layer.size} bytes its manifest says`);
      const now = Date.now();
      if (now - last > 100) {
        last = now;
        emit({ kind: 'blob', digest: layer.digest, size: layer.size, done, state: 'transferring' });
      }
      yield chunk;
    }
  }
  return store.writeTempBlob(counted(), layer.digest);
}
