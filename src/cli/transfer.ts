import { TransferProgress } from './progress.js';
import { InterruptedError, InvalidArgumentError } from '../common/errors.js';
import { parseStallTimeout } from '../common/parse.js';
import type { Engine } from '../engine/engine.js';
import {
  ensureImage as engineEnsureImage,
  parsePullPolicy,
  pull,
  type ImageRecord,
  type TransferOptions,
} from '../engine/transfer.js';
import { hullEnv, hullEnvNumber } from '../common/env.js';

/** `--tls-verify[=true|false]` as podman spells it. */
export function tlsVerify(v: string | boolean | undefined): boolean {
  if (v === undefined || v === true || v === 'true') return true;
  if (v === 'false') return false;
  throw new InvalidArgumentError(`invalid --tls-verify value "${String(v)}": use true or false`);
}

/** What pull and push share: TLS choice, progress, retry count, stall timeout. */
export function transferOptions(
  o: { tlsVerify?: string | boolean; stallTimeout?: string },
  progress: TransferProgress,
): TransferOptions {
  const env = hullEnv('HULL_REGISTRY_STALL_TIMEOUT');
  const stall =
    o.stallTimeout !== undefined
      ? parseStallTimeout(o.stallTimeout)
      : env
        ? parseStallTimeout(env, 'HULL_REGISTRY_STALL_TIMEOUT')
        : undefined;
  return {
    insecure: !tlsVerify(o.tlsVerify),
    onEvent: progress.onEvent,
    ...(hullEnvNumber('HULL_REGISTRY_ATTEMPTS') ? { attempts: hullEnvNumber('HULL_REGISTRY_ATTEMPTS')! } : {}),
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
export async function pullWithProgress(engine: Engine, ref: string, o: PullFlags): Promise<ImageRecord> {
  const progress = new TransferProgress('pull', !!o.quiet);
  try {
    return await interruptible(`pull of ${ref}`, (signal) =>
      pull(engine, ref, { ...(o.platform ? { platform: o.platform } : {}), ...transferOptions(o, progress), signal }),
    );
  } finally {
    progress.finish();
  }
}

/**
 * `run`/`create --pull missing|always|never|newer` (engine/transfer.ts decides); a missing image is
 * announced on stderr before its pull, like docker, and a registry that cannot be asked is a warning.
 */
export async function ensureImage(
  engine: Engine,
  ref: string,
  policy: string | undefined,
  o: PullFlags,
): Promise<void> {
  const p = parsePullPolicy(policy);
  const progress = new TransferProgress('pull', !!o.quiet);
  try {
    await interruptible(`pull of ${ref}`, (signal) =>
      engineEnsureImage(engine, ref, p, {
        ...(o.platform ? { platform: o.platform } : {}),
        ...transferOptions(o, progress),
        signal,
        notify: (n) => {
          if (n.kind === 'warning') process.stderr.write(`hull: warning: ${n.message}\n`);
          else if (!o.quiet) process.stderr.write(`${n.message}\n`);
        },
      }),
    );
  } finally {
    progress.finish();
  }
}
