/**
 * `hull push`: upload an image's blobs (config and layers) that the target repository lacks,
 * then PUT its manifest, byte for byte as stored (so the registry's digest is hull's).
 *
 * Per blob: HEAD first (present: skipped); when the image also has a name in another repository
 * of the same registry, a cross-repository mount is tried (`POST ?mount=DIGEST&from=REPO`);
 * otherwise, or when the registry declines the mount, an upload: monolithic (POST, then PUT
 * with the whole blob and `?digest=`) for blobs up to the chunk size, chunked (PATCH with
 * Content-Range per chunk, then PUT `?digest=`) above it.
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { InvalidArgumentError } from '../../common/errors.js';
import { parseReference } from '../reference.js';
import type { ImageStore } from '../store.js';
import type { Descriptor } from '../types.js';
import { RegistryClient, clientFor } from './client.js';
import type { CredentialStore } from './credentials.js';
import { parallel, type TransferEvent } from './pull.js';

export interface PushOptions {
  insecure?: boolean;
  credentials?: CredentialStore;
  onEvent?: (e: TransferEvent) => void;
  /** blobs larger than this go up in chunks of this size (default 64 MiB) */
  chunkSize?: number;
  concurrency?: number;
  attempts?: number;
  backoffMs?: number;
  /** abandon an attempt when no byte moves for this long (ms; default 30 s, 0: never) */
  stallTimeoutMs?: number;
}

const split = (name: string) => ({
  registry: name.slice(0, name.indexOf('/')),
  repo: name.slice(name.indexOf('/') + 1),
});

/** Push local image `src` to `dest` (default: `src`'s own name). Returns the manifest digest. */
export async function pushImage(
  store: ImageStore,
  src: string,
  dest: string | undefined,
  opts: PushOptions = {},
): Promise<{ digest: string; ref: string }> {
  const target = parseReference(dest ?? src);
  if (target.digest) throw new InvalidArgumentError(`cannot push to ${dest ?? src}: give a tag, not a digest`);
  const { record, manifest, bytes, mediaType } = await store.manifestOf(src);
  const { registry, repo } = split(target.name);
  const client = clientFor(registry, opts);
  const emit =
    opts.onEvent ??
    (() => {
      /* quiet */
    });
  const chunkSize = opts.chunkSize ?? 64 * 1024 * 1024;
  // another repository of the same registry that has this image: blobs can be mounted from it
  const mountFrom = record.names
    .map((n) => {
      try {
        return parseReference(n).name;
      } catch {
        return undefined;
      }
    })
    .filter((n): n is string => !!n && split(n).registry === registry && n !== target.name)
    .map((n) => split(n).repo)[0];

  const blobs: Descriptor[] = [];
  const seen = new Set<string>();
  for (const d of [manifest.config, ...manifest.layers]) {
    if (!seen.has(d.digest)) {
      seen.add(d.digest);
      blobs.push(d);
    }
  }
  const pushScopes = [`repository:${repo}:pull,push`];
  await parallel(blobs, opts.concurrency ?? 3, async (blob) => {
    if (await client.hasBlob(repo, blob.digest, pushScopes)) {
      emit({ kind: 'blob', digest: blob.digest, size: blob.size, done: blob.size, state: 'exists' });
      return;
    }
    emit({ kind: 'blob', digest: blob.digest, size: blob.size, done: 0, state: 'transferring' });
    const path = store.blobPath(blob.digest);
    const started = await client.startUpload(repo, blob.digest, mountFrom);
    if (started === 'mounted') {
      emit({ kind: 'blob', digest: blob.digest, size: blob.size, done: blob.size, state: 'mounted' });
      return;
    }
    const stream = (start: number, length: number) => () =>
      Readable.toWeb(createReadStream(path, { start, end: start + length - 1 })) as unknown as BodyInit;
    if (blob.size <= chunkSize) {
      await client.finishUpload(repo, started, blob.digest, {
        length: blob.size,
        make: blob.size > 0 ? stream(0, blob.size) : () => new Uint8Array(0),
      });
    } else {
      let url = started;
      for (let off = 0; off < blob.size; off += chunkSize) {
        const len = Math.min(chunkSize, blob.size - off);
        url = await client.uploadChunk(repo, url, off, len, stream(off, len));
        emit({ kind: 'blob', digest: blob.digest, size: blob.size, done: off + len, state: 'transferring' });
      }
      await client.finishUpload(repo, url, blob.digest);
    }
    emit({ kind: 'blob', digest: blob.digest, size: blob.size, done: blob.size, state: 'done' });
  });
  const digest = await client.putManifest(repo, target.tag, bytes, mediaType);
  return { digest, ref: target.display.startsWith(registry) ? target.display : `${registry}/${target.display}` };
}

/** `hull login`: check the credentials against the registry, then save them. */
export async function login(
  credentials: CredentialStore,
  registry: string,
  user: { username: string; password: string },
  opts: { insecure?: boolean } = {},
): Promise<void> {
  const client = new RegistryClient(registry, {
    credentials: user,
    ...(opts.insecure ? { insecure: true } : {}),
    attempts: 2,
  });
  await client.ping();
  credentials.set(registry, user);
}
