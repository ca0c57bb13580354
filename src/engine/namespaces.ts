/**
 * The engine's side of an instance sharing another's namespaces (docker's container:X modes: --network, --pid,
 * --ipc) and of the host paths an instance needs made before it starts (-v of a missing host directory).
 *
 * At create, `container:NAME` is resolved to `container:<id>` (X may be renamed later) and checked: X exists,
 * is not the instance itself, and its driver lets others join its namespaces (a VM has its own kernel). At every
 * create of the instance's process (create, and each start), X must run: its namespaces are those of X's first
 * process, /proc/<pid>/ns/*. The instance never owns them: its teardown leaves X's network alone.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { InvalidArgumentError, StateError } from '../common/errors.js';
import type { InstanceConfig, InstanceContext, InstanceKind, JoinedNamespaces } from '../common/instance.js';
import { instancePaths } from '../common/paths.js';
import type { Engine } from './engine.js';
import type { InstanceRecord } from './store.js';

const PREFIX = 'container:';

/** The modes of a config that name another instance: [flag, what docker calls it, the mode]. */
function joinModes(config: InstanceConfig): { flag: string; what: string; mode: string }[] {
  const out: { flag: string; what: string; mode: string }[] = [];
  if (config.network.startsWith(PREFIX)) out.push({ flag: '--network', what: 'network', mode: config.network });
  const c = config.container;
  if (c?.pidMode?.startsWith(PREFIX)) out.push({ flag: '--pid', what: 'PID', mode: c.pidMode });
  if (c?.ipcMode?.startsWith(PREFIX)) out.push({ flag: '--ipc', what: 'IPC', mode: c.ipcMode });
  return out;
}

/**
 * create: `container:NAME` → `container:<id>` in the config (changed in place), checked. Nothing is made yet, so
 * a bad name fails cleanly.
 */
export function resolveJoinTargets(engine: Engine, config: InstanceConfig, selfId: string, kind: InstanceKind): void {
  for (const { flag, mode } of joinModes(config)) {
    if (!engine.driver(kind).capabilities.sharedNamespaces)
      throw new InvalidArgumentError(
        `${flag} ${mode} is not possible for a ${kind.toUpperCase()}: it has its own kernel`,
      );
    const ref = mode.slice(PREFIX.length);
    const x = engine.store.lookup(ref);
    if (x.id === selfId) throw new InvalidArgumentError(`${flag} ${mode}: an instance cannot join itself`);
    if (!engine.driver(x.kind).capabilities.sharedNamespaces)
      throw new InvalidArgumentError(
        `${flag} ${mode}: ${x.name} is a ${x.kind}, whose namespaces cannot be shared (it has its own kernel)`,
      );
    if (flag === '--ipc') {
      const ipc = x.config.container?.ipcMode;
      if (ipc !== 'shareable' && ipc !== 'host')
        throw new InvalidArgumentError(
          `--ipc ${mode}: non-shareable IPC (hint: create ${x.name} with --ipc shareable, docker's IpcMode:shareable for the donor container)`,
        );
    }
    const resolved = `${PREFIX}${x.id}`;
    if (flag === '--network') config.network = resolved;
    else if (flag === '--pid') config.container!.pidMode = resolved;
    else config.container!.ipcMode = resolved;
  }
}

/**
 * Before the instance's process is made (create, start): the namespaces of the instances it joins, which must
 * run (docker: "cannot join network of a non running container: X"), and the host directories of its -v
 * volumes that do not exist yet (docker's -v makes them; --mount refuses a missing source).
 */
export function prepareHostSide(engine: Engine, rec: InstanceRecord, ctx: InstanceContext): void {
  for (const m of rec.config.mounts)
    if (m.type === 'bind' && m.createHostPath && !existsSync(m.source)) mkdirSync(m.source, { recursive: true });
  const modes = joinModes(rec.config);
  if (modes.length === 0) return;
  const joined: JoinedNamespaces = {};
  for (const { what, mode } of modes) {
    const id = mode.slice(PREFIX.length);
    const x = engine.store.get(id);
    if (!x) throw new StateError(`cannot join ${what} of a removed container: ${id.slice(0, 12)}`);
    const ns = `/proc/${x.pid}/ns`;
    if ((x.state !== 'running' && x.state !== 'paused') || x.pid <= 0 || !existsSync(ns))
      throw new StateError(`cannot join ${what} of a non running container: ${x.name}`);
    if (what === 'network') {
      joined.network = `${ns}/net`;
      joined.etcFrom = engine.instanceDir(x.id);
      if (!existsSync(instancePaths(joined.etcFrom).hostname))
        throw new StateError(`cannot join network of ${x.name}: it has no /etc/hostname of hull's`);
    } else if (what === 'PID') joined.pid = `${ns}/pid`;
    else {
      joined.ipc = `${ns}/ipc`;
      joined.shm = x.config.container?.ipcMode === 'host' ? '/dev/shm' : instancePaths(engine.instanceDir(x.id)).shm;
    }
  }
  ctx.joined = joined;
}
