import { InvalidArgumentError, StateError } from '../../common/errors.js';
import type { Engine } from '../engine.js';
import type { InstanceRecord } from '../store.js';
import { isValidName } from '../names.js';
import { saveInstanceFile } from '../instance-file.js';
import { updateHostsFile } from '../../host/etcfiles.js';
import { instancePaths } from '../../common/paths.js';

/** docker's pattern for container names: at least two characters (hull's own limit of 128 applies as well) */
const DOCKER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/**
 * rename (docker's rules): any state but removing, running instances included; the new name must be valid and
 * free. The instance's DNS name on the networks it is attached to follows at once (NetworkManager.rename).
 */
export async function renameInstance(engine: Engine, rec: InstanceRecord, newName: string): Promise<InstanceRecord> {
  const name = newName.replace(/^\//, '');
  if (name === '') throw new InvalidArgumentError('Neither old nor new names may be empty');
  if (!DOCKER_NAME.test(name) || !isValidName(name))
    throw new InvalidArgumentError(
      `Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed (2 to 128 characters)`,
    );
  if (name === rec.name) throw new InvalidArgumentError('Renaming a container with the same name as its current name');
  if (rec.state === 'removing') throw new StateError(`cannot rename instance ${rec.name}: it is being removed`);
  engine.store.rename(rec.id, name);
  const renamed = { ...rec, name };
  // the saved record (what `hull system recover` rebuilds from) and the network names follow the database
  saveInstanceFile(engine.instanceDir(rec.id), renamed);
  await engine.networks.rename(rec.id, rec.name, name);
  // a running container's /etc/hosts names it on each of its addresses (host/etcfiles.ts): those lines follow too
  // (a later start writes the file anew)
  const ips = engine.networks
    .attachments(rec.id)
    .flatMap((a) => [a.address, a.address6 ?? ''])
    .filter(Boolean)
    .map((x) => x.split('/')[0]!);
  if (ips.length > 0)
    updateHostsFile(instancePaths(engine.instanceDir(rec.id)).hosts, {
      ips,
      names: [...new Set([rec.config.hostname || rec.id.slice(0, 12), name])],
    });
  engine.event(renamed, 'rename', { oldName: rec.name });
  return renamed;
}
