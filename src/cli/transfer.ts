import { join } from 'node:path';
import type { CliContext } from './context.js';
import { TransferProgress } from './progress.js';
import { HullError, InvalidArgumentError, NotFoundError } from '../common/errors.js';
import type { Engine } from '../engine/engine.js';
import type { ImageRecord } from '../image/store.js';
import { parseReference } from '../image/reference.js';
import { CredentialStore } from '../image/registry/credentials.js';
import { pullImage } from '../image/registry/pull.js';

/** `--tls-verify[=true|false]` as podman spells it. */
export function tlsVerify(v: string | boolean | undefined): boolean {
  if (v === undefined || v === true || v === 'true') return true;
  if (v === 'false') return false;
  throw new InvalidArgumentError(`invalid --tls-verify value "${String(v)}": use true or false`);
}

const envNumber = (name: string) => (process.env[name] ? Number(process.env[name]) : undefined);

/** What pull and push share: TLS choice, saved credentials, progress, retry count. */
export function transferOptions(ctx: CliContext, o: { tlsVerify?: string | boolean }, progress: TransferProgress) {
  return {
    insecure: !tlsVerify(o.tlsVerify),
    credentials: new CredentialStore(join(ctx.root, 'auth.json')),
    onEvent: progress.onEvent,
    ...(envNumber('HULL_REGISTRY_ATTEMPTS') ? { attempts: envNumber('HULL_REGISTRY_ATTEMPTS')! } : {}),
  };
}

export interface PullFlags {
  platform?: string;
  tlsVerify?: string | boolean;
  quiet?: boolean;
}

/** Pull with progress bars on a terminal (plain lines otherwise) on stderr. */
export async function pullWithProgress(ctx: CliContext, engine: Engine, ref: string, o: PullFlags): Promise<ImageRecord> {
  const progress = new TransferProgress('pull', !!o.quiet);
  try {
    return await pullImage(engine.images, ref, { ...(o.platform ? { platform: o.platform } : {}), ...transferOptions(ctx, o, progress) });
  } finally {
    progress.finish();
  }
}

export type PullPolicy = 'missing' | 'always' | 'never' | 'newer';

/**
 * `run`/`create --pull`: missing (default) pulls an image that is not stored, always pulls every time,
 * never only uses what is stored. Like docker, a missing image is announced on stderr before its pull.
 */
export async function ensureImage(ctx: CliContext, engine: Engine, ref: string, policy: string | undefined, o: PullFlags): Promise<void> {
  const p = (policy ?? 'missing') as PullPolicy;
  if (!['missing', 'always', 'never', 'newer'].includes(p)) {
    throw new InvalidArgumentError(`invalid --pull value "${policy}": use missing, always or never`);
  }
  if (p === 'always') {
    await pullWithProgress(ctx, engine, ref, o);
    return;
  }
  try {
    await engine.images.resolve(ref);
    return;
  } catch (e) {
    if (!(e instanceof NotFoundError) || p === 'never') throw e;
    // an id or id prefix that is not stored cannot be pulled
    try {
      parseReference(ref);
    } catch {
      throw e;
    }
    if (/^(sha256:)?[a-f0-9]{12,64}$/.test(ref)) throw e;
  }
  if (!o.quiet) process.stderr.write(`Unable to find image '${ref}' locally; pulling it\n`);
  try {
    await pullWithProgress(ctx, engine, ref, o);
  } catch (e) {
    // one line that says both: the image is not here, and why it could not be fetched
    if (e instanceof HullError) e.message = `image ${ref} is not stored here and pulling it failed: ${e.message}`;
    throw e;
  }
}
