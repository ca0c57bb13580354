import { HostSupportError, InvalidArgumentError } from '../common/errors.js';
import { probeRuntime } from '../host/probe.js';
import { hullEnv } from '../common/env.js';

export const KNOWN_RUNTIMES = ['crun', 'runc'] as const;

/**
 * Policy: which OCI runtime runs a container. crun when it works here (it starts containers in about a
 * third of runc's time), runc otherwise; HULL_RUNTIME or --runtime override.
 */
export function defaultRuntime(): string {
  const forced = hullEnv('HULL_RUNTIME');
  if (forced) return checkRuntime(forced);
  for (const name of KNOWN_RUNTIMES) {
    if (probeRuntime(name).usable) return name;
  }
  throw new HostSupportError('no usable OCI runtime: install runc or crun (apt-get install runc crun), then retry');
}

export function checkRuntime(name: string): string {
  if (!(KNOWN_RUNTIMES as readonly string[]).includes(name)) {
    throw new InvalidArgumentError(`unknown runtime "${name}": use ${KNOWN_RUNTIMES.join(' or ')}`);
  }
  const p = probeRuntime(name);
  if (!p.usable)
    throw new HostSupportError(`runtime ${name} cannot run containers on this host: ${p.reason ?? 'unknown reason'}`);
  return name;
}
