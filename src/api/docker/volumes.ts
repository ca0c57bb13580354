/**
 * docker's `/volumes/…` endpoints over engine/volumes.ts: the local driver, with volumes in hull's storage pools.
 * DriverOpts `size` (docker's `volume create -o size=…`), `pool` and `type` choose how a volume is made; Options
 * shows them back.
 */
import {
  createVolume,
  inspectVolume,
  listVolumes,
  matchLabel,
  pruneVolumes,
  removeVolume,
  type VolumeRecord,
  volumeOptions,
  volumeUsers,
} from '../../engine/volumes.js';
import type { Engine } from '../../engine/engine.js';
import { ApiError, filters, flag, noContent, type Router, sendJson } from '../http.js';

/** A volume's options as docker's `-o`: pool (not the default), size, type (block); null when none. */
export function volumeOpts(v: VolumeRecord): Record<string, string> | null {
  const o: Record<string, string> = {
    ...(v.pool && v.pool !== 'default' ? { pool: v.pool } : {}),
    ...(v.size !== undefined ? { size: String(v.size) } : {}),
    ...(v.type === 'block' ? { type: 'block' } : {}),
  };
  return Object.keys(o).length ? o : null;
}

export function volumeEntry(v: VolumeRecord): Record<string, unknown> {
  return {
    Name: v.name,
    Driver: v.driver,
    Mountpoint: v.mountpoint,
    CreatedAt: v.createdAt,
    Labels: Object.keys(v.labels).length ? v.labels : null,
    Scope: 'local',
    // docker's local driver shows the options it was given (null for none): what differs from the defaults
    Options: volumeOpts(v),
  };
}

export function volumeList(engine: Engine, f: Record<string, string[]>): Record<string, unknown>[] {
  return listVolumes(engine)
    .filter(
      (v) =>
        (!f.name?.length || f.name.some((n) => v.name.includes(n))) &&
        (f.label ?? []).every((l) => matchLabel(v.labels, l)) &&
        (!f.driver?.length || f.driver.includes(v.driver)) &&
        (!f.dangling?.length ||
          (['true', '1'].includes(f.dangling[0]!)
            ? volumeUsers(engine, v.name).length === 0
            : volumeUsers(engine, v.name).length > 0)),
    )
    .map(volumeEntry);
}

export function volumeRoutes(r: Router): void {
  r.on('GET', '/volumes', async (c, res) => {
    sendJson(res, 200, { Volumes: volumeList(c.engine, filters(c.query)), Warnings: [] });
  });

  r.on('POST', '/volumes/create', async (c, res) => {
    const b = await c.body();
    const name = b.Name ?? '';
    if (typeof name !== 'string') throw new ApiError(400, 'Name must be a string');
    const driver = b.Driver ?? 'local';
    if (driver !== '' && driver !== 'local')
      throw new ApiError(400, `volume driver "${String(driver)}" is not supported: hull has the local driver only`);
    const opts = (b.DriverOpts ?? {}) as Record<string, unknown>;
    if (typeof opts !== 'object' || Object.values(opts).some((x) => typeof x !== 'string'))
      throw new ApiError(400, 'DriverOpts must be an object of strings');
    const labels = (b.Labels ?? {}) as Record<string, unknown>;
    if (typeof labels !== 'object' || Object.values(labels).some((x) => typeof x !== 'string'))
      throw new ApiError(400, 'Labels must be an object of strings');
    const v = createVolume(c.engine, {
      ...(name ? { name } : {}),
      labels: labels as Record<string, string>,
      ...volumeOptions(opts as Record<string, string>),
    });
    sendJson(res, 201, volumeEntry(v));
  });

  r.on('POST', '/volumes/prune', async (c, res) => {
    const removed = pruneVolumes(c.engine, filters(c.query).label ?? []);
    sendJson(res, 200, { VolumesDeleted: removed, SpaceReclaimed: 0 });
  });

  r.on('GET', '/volumes/{name}', async (c, res) => {
    sendJson(res, 200, volumeEntry(inspectVolume(c.engine, c.params.name!)));
  });

  r.on('DELETE', '/volumes/{name}', async (c, res) => {
    removeVolume(c.engine, c.params.name!, { force: flag(c.query, 'force') });
    noContent(res);
  });
}
