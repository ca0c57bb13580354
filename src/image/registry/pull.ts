/**
 * `hull pull`: resolve a reference on its registry (an index or manifest list picks the
 * platform: the host's, or `--platform os/arch[/variant]`), download the config and the layers
 * the store lacks, then commit the manifest and the name in one locked step.
 *
 * Blobs: a few at a time, each streamed into its partial file (`images/.downloads/<hex>.part`),
 * verified against its digest and renamed into blobs/, held by the pull's lease until the image
 * is committed. A blob another hull process is downloading is waited for, not fetched again (the
 * store's download claims, see store.ts); a claim of a process that died is taken over.
 *
 * Faults: network errors and stalls (no byte for the stall timeout) are retried with back-off,
 * resuming the partial with a range request where the registry allows it. Local file-system
 * errors (ENOSPC, EDQUOT, EROFS, EIO, EACCES) are not retried: one LocalFsError line names the
 * path, the file system and the space. On failure or interrupt (opts.signal) the finished blobs
 * stay as unreferenced blobs (the next pull finds them; `image prune` collects them) and a partial
 * stays for a resume when the registry takes range requests, removed otherwise; no temp file is left.
 * Nothing is named, and no image appears, until the final step.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { mkdir, open, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  HullError,
  InterruptedError,
  LocalFsError,
  InvalidArgumentError,
  IntegrityError,
  NotFoundError,
  RegistryError,
} from '../../common/errors.js';
import { describeLocalFsError, isLocalFsError } from '../../host/fserror.js';
import type { Lease } from '../lease.js';
import { parseReference } from '../reference.js';
import type { ImageRecord, ImageStore } from '../store.js';
import { hostArchitecture, MEDIA_TYPE, type Descriptor, type OciIndex, type OciManifest } from '../types.js';
import { MANIFEST_TYPES, StallError, clientFor, type RegistryClient } from './client.js';
import type { CredentialStore } from './credentials.js';

/** What pull and push report while they work (the CLI draws it). */
export type TransferEvent =
  | { kind: 'resolved'; ref: string; digest: string }
  | {
      kind: 'blob';
      digest: string;
      size: number;
      done: number;
      state: 'waiting' | 'exists' | 'mounted' | 'transferring' | 'retrying' | 'done';
    };

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
  /** abandon an attempt when no byte moves for this long (ms; default 30 s, 0: never) */
  stallTimeoutMs?: number;
  /** abort the pull (SIGINT): it ends with the signal's reason, an InterruptedError, after its cleanup */
  signal?: AbortSignal;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** Layer media types hull can unpack. */
const LAYER_TYPES = new Set<string>([
  MEDIA_TYPE.layer,
  MEDIA_TYPE.layerGzip,
  MEDIA_TYPE.layerZstd,
  MEDIA_TYPE.dockerLayerGzip,
  'application/vnd.docker.image.rootfs.diff.tar',
]);
const CONFIG_LIMIT = 8 * 1024 * 1024;

/** Parse `os/arch[/variant]`. */
export function parsePlatform(text: string): Platform {
  const parts = text.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]+$/.test(p))) {
    throw new InvalidArgumentError(
      `invalid platform "${text}": expected os/arch[/variant], e.g. linux/amd64 or linux/arm/v7`,
    );
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
  const candidates = index.manifests.filter(
    (d) => d.platform && d.platform.os === want.os && d.platform.architecture === want.architecture,
  );
  if (want.variant) {
    const exact = candidates.find(
      (d) => (d.platform!.variant ?? defaultVariant(d.platform!.architecture)) === want.variant,
    );
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
async function resolveManifest(
  client: RegistryClient,
  repo: string,
  ref: { digest?: string; tag: string },
  display: string,
  platform: string | undefined,
) {
  let fetched = await client.getManifest(repo, ref.digest ?? ref.tag, display);
  const isIndex = (t: string) => t === MANIFEST_TYPES.ociIndex || t === MANIFEST_TYPES.dockerList;
  // an index picks the platform; an entry may be an index itself (nested indexes, e.g. per OS version):
  // go down a few levels, taking a platform-less nested index when no entry names the platform
  for (let depth = 0; isIndex(fetched.mediaType); depth++) {
    if (depth >= 4) throw new RegistryError(`image ${display}: indexes nested more than 4 deep; hull stops there`);
    const index = JSON.parse(fetched.bytes.toString('utf8')) as OciIndex;
    const want = platform ? parsePlatform(platform) : hostPlatform();
    const chosen =
      choosePlatform(index, want, !!platform && want.variant !== undefined) ??
      (index.manifests ?? []).find((d) => !d.platform && isIndex(d.mediaType));
    if (!chosen) {
      const has = (index.manifests ?? [])
        .map((d) => d.platform)
        .filter((p): p is Platform => !!p && p.os !== 'unknown')
        .map(platformText);
      throw new NotFoundError(
        `image ${display} has no variant for platform ${platformText(want)} (it has: ${has.join(', ') || 'none'}); choose one with --platform`,
      );
    }
    fetched = await client.getManifest(repo, chosen.digest, `${display}@${chosen.digest}`);
  }
  if (fetched.mediaType !== MANIFEST_TYPES.ociManifest && fetched.mediaType !== MANIFEST_TYPES.dockerManifest) {
    throw new RegistryError(
      `image ${display} has a manifest of type ${fetched.mediaType || 'unknown'}, which hull cannot use (it reads OCI and docker schema 2 manifests)`,
    );
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
  const emit =
    opts.onEvent ??
    (() => {
      /* quiet */
    });
  const fetched = await resolveManifest(client, repo, ref, display, opts.platform);
  emit({ kind: 'resolved', ref: display, digest: fetched.digest });
  const manifest = JSON.parse(fetched.bytes.toString('utf8')) as OciManifest;
  if (!manifest.config?.digest || !Array.isArray(manifest.layers))
    throw new RegistryError(`the manifest of ${display} has no config or layers`);
  for (const l of manifest.layers) {
    if (!LAYER_TYPES.has(l.mediaType))
      throw new RegistryError(
        `image ${display} has a layer of type ${l.mediaType}, which hull cannot unpack (it reads plain, gzip and zstd tar layers)`,
      );
  }

  // the config: small; downloaded like a layer, then read from the store
  if (manifest.config.size > CONFIG_LIMIT)
    throw new RegistryError(`the config of ${display} is larger than ${CONFIG_LIMIT} bytes`);

  const lease = store.lease();
  try {
    const blobs: Descriptor[] = [manifest.config];
    const seen = new Set<string>([manifest.config.digest]);
    for (const l of manifest.layers) {
      if (seen.has(l.digest)) continue;
      seen.add(l.digest);
      blobs.push(l);
      emit({ kind: 'blob', digest: l.digest, size: l.size, done: 0, state: 'waiting' });
    }
    const dl: DownloadContext = {
      store,
      client,
      repo,
      lease,
      display,
      registry,
      emit,
      attempts: Math.max(1, opts.attempts ?? 4),
      backoffMs: opts.backoffMs ?? 250,
      ...(opts.signal ? { signal: opts.signal } : {}),
    };
    await parallel(blobs, opts.concurrency ?? 3, (blob) => fetchBlob(dl, blob, blob !== manifest.config));
    let config: Buffer;
    try {
      config = readFileSync(store.blobPath(manifest.config.digest));
    } catch (e) {
      throw describeLocalFsError(e, {
        path: store.blobPath(manifest.config.digest),
        action: `reading the config of ${display}`,
      });
    }
    try {
      return await store.commitPulled(ref, {
        manifest: fetched.bytes,
        mediaType: fetched.mediaType,
        config,
        layers: [],
      });
    } catch (e) {
      throw describeLocalFsError(e, {
        path: store.imagesDir,
        action: `storing image ${display}`,
        needed: fetched.bytes.length + config.length,
      });
    }
  } finally {
    lease.release();
  }
}

interface DownloadContext {
  store: ImageStore;
  client: RegistryClient;
  repo: string;
  lease: Lease;
  display: string;
  registry: string;
  emit: (e: TransferEvent) => void;
  attempts: number;
  backoffMs: number;
  signal?: AbortSignal;
}

/** How often a puller waiting for another process's download of the same blob looks again. */
const WAIT_POLL_MS = 200;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

function interrupted(signal: AbortSignal | undefined, display: string): void {
  if (!signal?.aborted) return;
  const reason = signal.reason as unknown;
  if (reason instanceof InterruptedError) throw reason;
  throw new InterruptedError(`pull of ${display} interrupted`);
}

/**
 * Get one blob into the store (committed, and held by the pull's lease): nothing to do when it is stored;
 * wait while another process (or task) downloads it; otherwise download it, resuming a partial with a range
 * request, retrying network failures and stalls. A layer (`isLayer`) reports progress; the config does not.
 */
async function fetchBlob(dl: DownloadContext, blob: Descriptor, isLayer: boolean): Promise<void> {
  const { store, lease, emit } = dl;
  const token = randomBytes(8).toString('hex');
  const event = (state: Extract<TransferEvent, { kind: 'blob' }>['state'], done: number) => {
    if (isLayer) emit({ kind: 'blob', digest: blob.digest, size: blob.size, done, state });
  };
  for (;;) {
    interrupted(dl.signal, dl.display);
    const claim = await store.claimDownload(blob.digest, lease, token);
    if (claim === 'stored') {
      event('exists', blob.size);
      return;
    }
    if (claim === 'mine') break;
    // The owner times out on its own stalls and gives the claim up; one that makes no progress for longer than
    // all its attempts could take is stuck (stopped, say): say who it is rather than wait for ever.
    const patience =
      dl.client.stallMs > 0 ? (dl.attempts + 1) * dl.client.stallMs + dl.backoffMs * 2 ** dl.attempts : Infinity;
    let size = store.partialSize(blob.digest);
    let moved = Date.now();
    event('waiting', size);
    while (!store.downloadSettled(blob.digest) && !dl.signal?.aborted) {
      await sleep(WAIT_POLL_MS, dl.signal);
      const now = store.partialSize(blob.digest);
      if (now !== size) {
        size = now;
        moved = Date.now();
      } else if (Date.now() - moved > patience) {
        const pid = store.downloadOwner(blob.digest);
        if (pid === undefined) break;
        throw new RegistryError(
          `${isLayer ? 'layer' : 'the config'} ${blob.digest} of ${dl.display} is being downloaded by hull process ${pid}, which has made no progress for ${Math.round((Date.now() - moved) / 1000)} s; wait for it or stop it, then pull again`,
        );
      }
    }
  }
  let resumable = true;
  let ok = false;
  let failure: unknown;
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        const r = await downloadOnce(dl, blob, event);
        resumable = r.ranges;
        await store.commitDownload(blob.digest, blob.size, lease, token);
        event('done', blob.size);
        ok = true;
        return;
      } catch (e) {
        failure = e;
        if ((e as { ranges?: boolean }).ranges !== undefined) resumable = (e as { ranges: boolean }).ranges;
        interrupted(dl.signal, dl.display);
        const cause = e;
        // a dropped connection or a stall is retried (and resumed); a digest mismatch, a refusal or a local error is not
        const transient = cause instanceof StallError || !(cause instanceof HullError || isLocalFsError(cause));
        if (!transient || attempt >= dl.attempts) {
          if (cause instanceof IntegrityError)
            throw new IntegrityError(
              `registry ${dl.registry} sent ${isLayer ? 'layer' : 'the config'} ${blob.digest} of ${dl.display} with the wrong content (${cause.message}); it was not stored`,
            );
          if (!transient) throw cause;
          if (cause instanceof StallError) {
            throw new RegistryError(
              `downloading ${isLayer ? 'layer' : 'the config'} ${blob.digest} of ${dl.display} from registry ${dl.registry} stalled: no data for ${cause.ms / 1000} s, ${attempt} attempts; check the registry and the network, or raise the stall timeout (--stall-timeout, HULL_REGISTRY_STALL_TIMEOUT)`,
            );
          }
          throw new RegistryError(
            `downloading ${isLayer ? 'layer' : 'the config'} ${blob.digest} of ${dl.display} from registry ${dl.registry} failed ${attempt} times: ${(cause as Error).message}`,
          );
        }
        event('retrying', 0);
        await sleep(dl.backoffMs * 2 ** (attempt - 1), dl.signal);
      }
    }
  } finally {
    // kept for a resume only where the registry takes range requests; a finished or damaged one is gone already
    if (!ok) store.releaseDownload(blob.digest, token, resumable && !(failure instanceof LocalFsError));
  }
}

/**
 * One attempt: resume the partial (re-hashing what it has) with `Range: bytes=N-`, or start it afresh when
 * there is none or the registry sends the whole blob, append to it, then check size and digest. A damaged
 * partial (wrong digest after a resume) is removed and the blob fetched once more from the start.
 * Errors carry `ranges` (whether the registry takes range requests) for the caller's keep-or-drop choice.
 */
async function downloadOnce(
  dl: DownloadContext,
  blob: Descriptor,
  event: (state: 'transferring', done: number) => void,
): Promise<{ ranges: boolean }> {
  const { store } = dl;
  const path = store.partialPath(blob.digest);
  const action = `writing ${blob.mediaType.includes('config') ? 'the config' : 'layer'} ${blob.digest.slice(0, 19)}… of ${dl.display}`;
  const local = (e: unknown) => describeLocalFsError(e, { path, action, needed: blob.size });
  let have = store.partialSize(blob.digest);
  if (have > blob.size) have = 0;
  const hash = createHash('sha256');
  if (have > 0) {
    try {
      for await (const chunk of createReadStream(path, { end: have - 1 })) hash.update(chunk as Buffer);
    } catch (e) {
      throw local(e);
    }
    // complete already (the process that wrote it died before committing it): nothing to fetch
    if (have === blob.size) {
      if ('sha256:' + hash.copy().digest('hex') === blob.digest) return { ranges: true };
      await rm(path, { force: true });
      return downloadOnce(dl, blob, event);
    }
  }
  let fh: FileHandle;
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    fh = await open(path, have > 0 ? 'r+' : 'w', 0o644);
  } catch (e) {
    throw local(e);
  }
  let opened: Awaited<ReturnType<RegistryClient['openBlob']>>;
  try {
    opened = await dl.client.openBlob(dl.repo, blob.digest, have, dl.signal);
  } catch (e) {
    await fh.close();
    throw e;
  }
  const { body, offset, ranges } = opened;
  const resumed = offset > 0;
  const h = offset > 0 ? hash : createHash('sha256');
  let done = offset;
  let last = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let position = offset;
  const flush = async () => {
    if (pendingBytes === 0) return;
    const bufs = pending;
    const total = pendingBytes;
    pending = [];
    pendingBytes = 0;
    try {
      // one writev, no copy; a short write (rare) goes on from there
      const written = (await fh.writev(bufs, position)).bytesWritten;
      if (written < total) {
        const rest = Buffer.concat(bufs, total).subarray(written);
        let off = 0;
        while (off < rest.length)
          off += (await fh.write(rest, off, rest.length - off, position + written + off)).bytesWritten;
      }
    } catch (e) {
      throw Object.assign(e as Error, { localWrite: true });
    }
    position += total;
  };
  try {
    if (offset !== have)
      await fh.truncate(offset).catch((e: unknown) => {
        throw local(e);
      });
    for await (const chunk of body) {
      done += chunk.length;
      if (done > blob.size)
        throw new IntegrityError(`blob ${blob.digest} is larger than the ${blob.size} bytes its manifest says`);
      h.update(chunk);
      pending.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
      pendingBytes += chunk.length;
      // network chunks are small (tens of KiB): write 1 MiB at a time
      if (pendingBytes >= 1 << 20) await flush();
      const now = Date.now();
      if (now - last > 100) {
        last = now;
        event('transferring', done);
      }
    }
    await flush();
    if (done !== blob.size)
      throw new IntegrityError(`blob ${blob.digest} ended after ${done} of the ${blob.size} bytes its manifest says`);
    await fh.sync().catch((e: unknown) => {
      throw local(e);
    });
  } catch (e) {
    const localWrite = !!(e as { localWrite?: boolean }).localWrite;
    // keep what arrived, for the next attempt (unless the disk refused it or the content is wrong)
    if (!localWrite && !(e instanceof IntegrityError))
      await flush().catch(() => {
        /* keep what is there */
      });
    await fh.close().catch(() => {
      /* closing */
    });
    // a partial that filled the disk goes, before the free space is measured for the message
    if (localWrite || e instanceof IntegrityError) await rm(path, { force: true });
    const err = localWrite ? local(e) : e;
    throw Object.assign(err instanceof Error ? err : new Error(String(err)), { ranges });
  }
  await fh.close();
  const digest = 'sha256:' + h.digest('hex');
  if (digest !== blob.digest) {
    await rm(path, { force: true });
    // a partial damaged on disk (a crash after a kill, say): fetch it once more from the start
    if (resumed) return downloadOnce(dl, blob, event);
    throw Object.assign(new IntegrityError(`blob digest mismatch: expected ${blob.digest}, got ${digest}`), { ranges });
  }
  return { ranges };
}
