/**
 * Image transfer verbs the CLI and the API share: pull (with the run/create pull policy), push, login,
 * logout, save and load. Credentials live in `<root>/auth.json`.
 */
import { HullError, InterruptedError, InvalidArgumentError, NotFoundError } from '../common/errors.js';
import type { Engine } from './engine.js';
import type { ImageRecord } from '../image/store.js';
import { parseReference } from '../image/reference.js';
import { CredentialStore, type Credentials, RequestCredentials } from '../image/registry/credentials.js';
import { pullImage, remoteManifestDigest, type TransferEvent } from '../image/registry/pull.js';
import { login as registryLogin, pushImage } from '../image/registry/push.js';
import { rootPaths } from '../common/paths.js';

export type { TransferEvent } from '../image/registry/pull.js';
export type { ImageRecord } from '../image/store.js';

/** What pulls and pushes share: TLS, progress, retries. */
export interface TransferOptions {
  /** plain HTTP (`--tls-verify=false`) */
  insecure?: boolean;
  onEvent?: (e: TransferEvent) => void;
  /** attempts per request and per blob */
  attempts?: number;
  /** give up on an attempt when no byte moves for this long (ms); 0: never */
  stallTimeoutMs?: number;
  /** aborts the transfer (its partial downloads are kept for a resume or removed) */
  signal?: AbortSignal;
  /** credentials for this transfer only (the daemon's X-Registry-Auth), in place of the saved login */
  auth?: Credentials;
}

export interface PullRequest extends TransferOptions {
  /** `os/arch[/variant]`; default the host's */
  platform?: string;
}

export const PULL_POLICIES = ['missing', 'always', 'never', 'newer'] as const;
export type PullPolicy = (typeof PULL_POLICIES)[number];

export function parsePullPolicy(text: string | undefined): PullPolicy {
  const p = text ?? 'missing';
  if (!(PULL_POLICIES as readonly string[]).includes(p))
    throw new InvalidArgumentError(`invalid --pull value "${text}": use missing, always, never or newer`);
  return p as PullPolicy;
}

/** The saved registry logins of a root (`<root>/auth.json`). */
function credentials(engine: Engine | string, auth?: Credentials): CredentialStore {
  const path = rootPaths(typeof engine === 'string' ? engine : engine.root).auth;
  return auth ? new RequestCredentials(path, auth) : new CredentialStore(path);
}

/** hull pull: download `ref` from its registry into the image store and name it. */
export async function pull(engine: Engine, ref: string, opts: PullRequest = {}): Promise<ImageRecord> {
  return pullImage(engine.images, ref, { ...opts, credentials: credentials(engine, opts.auth) });
}

/** What ensureImage tells its caller as it decides. */
export type PullNotice = { kind: 'pulling'; message: string } | { kind: 'warning'; message: string };

/** An image id or id prefix: never pulled (a registry has no such name). */
const looksLikeId = (ref: string) => /^(sha256:)?[a-f0-9]{12,64}$/.test(ref);

/**
 * The pull policy of `run` / `create --pull`, podman's semantics:
 * - missing (default): pull only when the image is not stored (announced before the pull, like docker);
 * - always: pull every time;
 * - never: use only what is stored;
 * - newer: pull when the registry's manifest for the name differs from the stored image's; when the
 *   registry cannot be asked (down, unknown name, no credentials), warn and use the stored image.
 * Returns the image to use.
 */
export async function ensureImage(
  engine: Engine,
  ref: string,
  policy: PullPolicy,
  opts: PullRequest & { notify?: (n: PullNotice) => void } = {},
): Promise<ImageRecord> {
  const { notify, ...pullOpts } = opts;
  if (policy === 'always') return pull(engine, ref, pullOpts);
  let local: ImageRecord | undefined;
  try {
    local = await engine.images.resolve(ref);
  } catch (e) {
    if (!(e instanceof NotFoundError) || policy === 'never') throw e;
    // an id or id prefix that is not stored, or text that is no reference, cannot be pulled
    try {
      parseReference(ref);
    } catch {
      throw e;
    }
    if (looksLikeId(ref)) throw e;
  }
  if (local) {
    if (policy !== 'newer' || looksLikeId(ref) || parseReference(ref).digest) return local;
    let remote: string;
    try {
      remote = await remoteManifestDigest(ref, { ...pullOpts, credentials: credentials(engine) });
    } catch (e) {
      notify?.({
        kind: 'warning',
        message: `cannot check ${ref} on its registry (${e instanceof Error ? e.message : String(e)}); using the local image`,
      });
      return local;
    }
    if (remote === local.manifestDigest) return local;
    return pull(engine, ref, pullOpts);
  }
  notify?.({ kind: 'pulling', message: `Unable to find image '${ref}' locally; pulling it` });
  try {
    return await pull(engine, ref, pullOpts);
  } catch (e) {
    // one line that says both: the image is not here, and why it could not be fetched
    if (e instanceof HullError && !(e instanceof InterruptedError))
      e.message = `image ${ref} is not stored here and pulling it failed: ${e.message}`;
    throw e;
  }
}

/** hull push: upload a stored image to `dest` (default: its own name). */
export async function push(
  engine: Engine,
  src: string,
  dest: string | undefined,
  opts: TransferOptions & { chunkSize?: number } = {},
): Promise<{ digest: string; ref: string }> {
  return pushImage(engine.images, src, dest, { ...opts, credentials: credentials(engine, opts.auth) });
}

/** hull login: check the credentials against the registry, then save them (only the root is needed). */
export async function login(
  root: string,
  registry: string,
  user: { username: string; password: string },
  opts: { insecure?: boolean } = {},
): Promise<void> {
  await registryLogin(credentials(root), registry, user, opts);
}

/** hull logout: forget a registry's credentials; false when there were none. */
export function logout(root: string, registry: string): boolean {
  return credentials(root).remove(registry);
}

/** hull save (tar handling loads on first use). */
export async function saveImages(
  engine: Engine,
  refs: string[],
  file: string | NodeJS.WritableStream,
  format: 'oci-archive' | 'docker-archive',
): Promise<void> {
  const archive = await import('../image/archive.js');
  await archive.saveImages(engine.images, refs, file, format);
}

/** hull load (tar handling loads on first use). */
export async function loadImages(
  engine: Engine,
  file: string | NodeJS.ReadableStream,
): Promise<{ record: ImageRecord; name?: string }[]> {
  const archive = await import('../image/archive.js');
  return archive.loadImages(engine.images, file);
}
