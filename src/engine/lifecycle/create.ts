import { ConflictError, InvalidArgumentError } from '../../common/errors.js';
import type { Engine } from '../engine.js';
import type { ImageRecord } from '../../image/store.js';
import { newInstanceRecord, type InstanceRecord } from '../store.js';
import { buildInstanceConfig, type CreateRequest } from '../config.js';
import { isValidName, newId, randomName } from '../names.js';
import { trace } from '../../common/trace.js';
import { attachInstance, detachInstance, resolveNetworkRequests } from '../networking.js';
import { saveInstanceFile } from '../instance-file.js';
import { describeNoSpace } from '../../host/fserror.js';
import { resolveJoinTargets } from '../namespaces.js';
import { removeVolume, resolveVolumes } from '../volumes.js';
import { placeRootDisk, removeRootDisk } from '../vm-disks.js';

/**
 * create: none → created. Resolves the image, records the instance, and has the driver assemble the
 * root filesystem and start its supervisor. Any failure removes everything made so far, record included.
 */
export interface CreateOptions {
  /** a hull process that waits for this instance's exit in the foreground (see Engine.context) */
  watcherPid?: number;
  /** the image, already resolved (hull build runs steps on images that are not in the index) */
  image?: ImageRecord;
}

export async function createInstance(
  engine: Engine,
  req: CreateRequest,
  opts: CreateOptions = {},
): Promise<InstanceRecord> {
  if (req.name !== undefined && !isValidName(req.name)) {
    throw new InvalidArgumentError(
      `invalid name "${req.name}": use letters, digits, _ . - (starting with a letter or digit)`,
    );
  }
  trace('create: begin');
  const image = opts.image ?? (await engine.images.resolve(req.image));
  trace('create: image resolved');
  const id = newId();
  const driver = engine.driver(req.kind);
  // the common part, then the kind's own section with its defaults (e.g. the OCI runtime), from its driver
  const config = {
    ...buildInstanceConfig(image, req, id),
    ...driver.configure(req, { otherConfigs: () => engine.store.list().map((r) => r.config) }),
  };
  // container:NAME modes (--network/--pid/--ipc) name an instance that exists, by id from here on
  resolveJoinTargets(engine, config, id, req.kind);
  // a VM's root disk: its place in a storage pool (the driver makes it)
  placeRootDisk(engine, config, id);
  // unknown networks fail before anything is recorded; the default network is created on first use
  if (config.network === 'bridge') config.networks = await resolveNetworkRequests(engine, config.networks ?? []);
  // named volumes made on first use, anonymous ones (-v /path, the image's VOLUMEs) named; removed again on failure
  const anonymous = await resolveVolumes(engine, config, opts.image ? undefined : image);
  const dropVolumes = () => {
    for (const v of anonymous) removeVolume(engine, v, { force: true });
  };
  const rec = newInstanceRecord({
    id,
    name: req.name ?? randomName(),
    kind: req.kind,
    image: req.image,
    imageId: image.id,
    config,
    createdAt: Date.now(),
  });
  const insert = (): void => {
    for (let attempt = 0; ; attempt++) {
      try {
        engine.store.insert(rec);
        break;
      } catch (e) {
        // a generated name that another instance already has: draw another (docker does the same)
        if (!(e instanceof ConflictError) || req.name !== undefined || attempt >= 9) throw e;
        rec.name = randomName();
      }
    }
  };
  // Recorded under the image store's lock, so that a concurrent `hull image prune` either sees this
  // instance or has removed the image (reported here) — never deletes it under the new instance. An image
  // handed in by hull build is held by the build's lease instead.
  try {
    if (opts.image) insert();
    else await engine.images.useImage(image, insert);
  } catch (e) {
    dropVolumes();
    throw e;
  }
  let ctx = engine.context(rec, [], opts.watcherPid);
  try {
    // the instance's own copy of its record, from which `hull system recover` rebuilds it if hull.db is lost
    saveInstanceFile(ctx.dir, rec, { create: true });
    ctx = engine.context(rec, await engine.images.layerDirs(image), opts.watcherPid);
    trace('create: record inserted, layers ready');
    await attachInstance(engine, rec, ctx);
    trace('create: networks attached');
    const res = await driver.create(ctx);
    trace('create: driver created');
    engine.store.patch(id, { pid: res.pid, supervisorPid: res.supervisorPid });
  } catch (e) {
    engine.undoing();
    await driver.delete(ctx).catch(() => undefined);
    removeRootDisk(engine, config);
    await detachInstance(engine, rec).catch(() => undefined);
    engine.store.remove(id);
    dropVolumes();
    throw describeNoSpace(e, { path: engine.instanceDir(id), action: `creating instance ${rec.name}` });
  }
  engine.event(rec, 'create');
  return engine.store.get(id)!;
}
