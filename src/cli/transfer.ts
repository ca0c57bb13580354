import { join } from 'node:path';
import type { CliContext } from './context.js';
import { TransferProgress } from './progress.js';
import { HullError, InterruptedError, InvalidArgumentError, NotFoundError } from '../common/errors.js';
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

/**
 * A stall timeout as given to `--stall-timeout` or HULL_REGISTRY_STALL_TIMEOUT: seconds (`30`, `2.5`), or with a
 * unit (`500ms`, `30s`, `2m`); 0 turns the check off. Returns milliseconds.
 */
export function parseStallTimeout(text: string, from = '--stall-timeout'): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m) throw new InvalidArgumentError(`invalid ${from} value "${text}": give seconds (30) or a duration (500ms, 30s, 2m); 0 turns it off`);
  const n = Number(m[1]);
  return Math.round(m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000);
}

/** What pull and push share: TLS choice, saved credentials, progress, retry count, stall timeout. */
export function transferOptions(ctx: CliContext, o: { tlsVerify?: string | boolean; stallTimeout?: string }, progress: TransferProgress) {
  const env = process.env.HULL_REGISTRY_STALL_TIMEOUT;
  const stall = o.stallTimeout !== undefined ? parseStallTimeout(o.stallTimeout) : env ? parseStallTimeout(env, 'HULL_REGISTRY_STALL_TIMEOUT') : undefined;
  return {
    insecure: !tlsVerify(o.tlsVerify),
    credentials: new CredentialStore(join(ctx.root, 'auth.json')),
    onEvent: progress.onEvent,
    ...(envNumber('HULL_REGISTRY_ATTEMPTS') ? { attempts: envNumber('HULL_REGISTRY_ATTEMPTS')! } : {}),
    ...(stall !== undefined ? { stallTimeoutMs: stall } : {}),
  };
}

export interface PullFlags {
  platform?: string;
  tlsVerify?: string | boolean;
  quiet?: boolean;
  stallTimeout?: string;
}

/**
 * Run `fn` with an AbortSignal that SIGINT and SIGTERM abort (with an InterruptedError as the reason), so a pull
 * or push ends through its own cleanup (partials kept for a resume or removed, claims released) instead of dying
 * in the middle. A second signal ends the process at once.
 */
export async function interruptible<T>(what: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((sig) => {
    const h = () => {
      if (ac.signal.aborted) process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
      ac.abort(new InterruptedError(`${what} interrupted (${sig})`, sig));
    };
    process.on(sig, h);
    return [sig, h] as const;
  });
  try {
    return await fn(ac.signal);
  } catch (e) {
    if (ac.signal.aborted && !(e instanceof InterruptedError)) throw ac.signal.reason;
    throw e;
  } finally {
    for (const [sig, h] of handlers) process.off(sig, h);
  }
}

/** Pull with progress bars on a terminal (plain lines otherwise) on stderr. */
export async function pullWithProgress(ctx: CliContext, engine: Engine, ref: string, o: PullFlags): Promise<ImageRecord> {
  const progress = new TransferProgress('pull', !!o.quiet);
  try {
    return await interruptible(`pull of ${ref}`, (signal) => pullImage(engine.images, ref, { ...(o.platform ? { platform: o.platform } : {}), ...transferOptions(ctx, o, progress), signal }));
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
    if (e instanceof HullError && !(e instanceof InterruptedError)) e.message = `image ${ref} is not stored here and pulling it failed: ${e.message}`;
    throw e;
  }
}
