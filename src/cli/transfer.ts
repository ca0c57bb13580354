import { TransferProgress } from './progress.js';
import { InvalidArgumentError } from '../common/errors.js';
import type { Engine } from '../engine/engine.js';
import { ensureImage as engineEnsureImage, parsePullPolicy, pull, type ImageRecord, type TransferOptions } from '../engine/transfer.js';

/** `--tls-verify[=true|false]` as podman spells it. */
export function tlsVerify(v: string | boolean | undefined): boolean {
  if (v === undefined || v === true || v === 'true') return true;
  if (v === 'false') return false;
  throw new InvalidArgumentError(`invalid --tls-verify value "${String(v)}": use true or false`);
}

const envNumber = (name: string) => (process.env[name] ? Number(process.env[name]) : undefined);

/** What pull and push share: TLS choice, progress, retry count. */
export function transferOptions(o: { tlsVerify?: string | boolean }, progress: TransferProgress): TransferOptions {
  return {
    insecure: !tlsVerify(o.tlsVerify),
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
export async function pullWithProgress(engine: Engine, ref: string, o: PullFlags): Promise<ImageRecord> {
  const progress = new TransferProgress('pull', !!o.quiet);
  try {
    return await pull(engine, ref, { ...(o.platform ? { platform: o.platform } : {}), ...transferOptions(o, progress) });
  } finally {
    progress.finish();
  }
}

/**
 * `run`/`create --pull missing|always|never|newer` (engine/transfer.ts decides); a missing image is
 * announced on stderr before its pull, like docker, and a registry that cannot be asked is a warning.
 */
export async function ensureImage(engine: Engine, ref: string, policy: string | undefined, o: PullFlags): Promise<void> {
  const p = parsePullPolicy(policy);
  const progress = new TransferProgress('pull', !!o.quiet);
  try {
    await engineEnsureImage(engine, ref, p, {
      ...(o.platform ? { platform: o.platform } : {}),
      ...transferOptions(o, progress),
      notify: (n) => {
        if (n.kind === 'warning') process.stderr.write(`hull: warning: ${n.message}\n`);
        else if (!o.quiet) process.stderr.write(`${n.message}\n`);
      },
    });
  } finally {
    progress.finish();
  }
}
