import { InvalidArgumentError, StateError } from '../common/errors.js';
import type { Engine } from './engine.js';
import { refresh } from './lifecycle/exit.js';

/**
 * `hull cp SRC DST`: one side names an instance (`NAME:PATH`, docker cp's syntax; a host path with a colon in
 * its first part is written ./a:b), the other a host path. The instance's driver copies the file itself where
 * its kind does (a full OS VM's guest agent: src/vm/guest-ops.ts); a container's root is served by the Docker
 * API's archive endpoints (`docker cp` against `hull daemon`, engine/cp.ts).
 */
export async function copyFiles(engine: Engine, src: string, dst: string): Promise<void> {
  const split = (arg: string): { instance: string; path: string } | null => {
    const i = arg.indexOf(':');
    if (i <= 0 || arg.startsWith('/') || arg.startsWith('.') || arg.slice(0, i).includes('/')) return null;
    return { instance: arg.slice(0, i), path: arg.slice(i + 1) };
  };
  const from = split(src);
  const to = split(dst);
  if ((from === null) === (to === null))
    throw new InvalidArgumentError(
      'hull cp copies between the host and an instance: give exactly one side as INSTANCE:PATH (e.g. hull cp vm1:/etc/hostname .)',
    );
  const side = (from ?? to)!;
  if (!side.path.startsWith('/'))
    throw new InvalidArgumentError(
      `hull cp: the path in the instance must be absolute (${side.instance}:${side.path})`,
    );
  const rec = await refresh(engine, engine.store.lookup(side.instance));
  if (!rec || rec.state !== 'running')
    throw new StateError(
      `cannot copy files with ${side.instance}: it is ${rec?.state ?? 'removed'} (hull start ${side.instance})`,
    );
  const driver = engine.driver(rec.kind);
  const ctx = engine.context(rec);
  if (!driver.copyFileIn || !driver.copyFileOut)
    throw new InvalidArgumentError(
      `hull cp copies files of full OS VMs for now; for ${rec.name} use docker cp against hull daemon (the Docker API's archive endpoints)`,
    );
  if (from) await driver.copyFileOut(ctx, from.path, dst);
  else await driver.copyFileIn(ctx, src, to!.path);
}
