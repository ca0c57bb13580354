/**
 * docker cp: `/containers/{id}/archive` GET (a tar of a path, with its stat in X-Docker-Container-Path-Stat),
 * HEAD (the stat only) and PUT (a tar extracted into a directory, never outside the container's root; see
 * engine/cp.ts), on running and stopped containers alike, `/containers/{id}/export` (the whole root as a tar) and `/changes` (docker diff).
 */
import { createWriteStream, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { containerChanges, copyIn, statInRoot, tarOut, withContainerRoot } from '../../engine/cp.js';
import type { Engine } from '../../engine/engine.js';
import type { InstanceRecord } from '../../engine/store.js';
import { ApiError, flag, type Router, sendJson } from '../http.js';
import { lookupContainer } from './containers.js';

/** `fn` on the container's root, running or stopped (engine/cp.ts); VMs are refused. */
async function onRoot<T>(engine: Engine, rec: InstanceRecord, fn: (root: string) => Promise<T>): Promise<T> {
  if (rec.kind === 'vm')
    throw new ApiError(
      501,
      `docker cp and export of VM ${rec.name} are not supported yet: use a bind mount (-v) or docker exec`,
    );
  return withContainerRoot(engine, rec, fn);
}

function pathParam(q: URLSearchParams): string {
  const p = q.get('path');
  if (!p) throw new ApiError(400, 'archive needs ?path=');
  return p;
}

export function archiveRoutes(r: Router): void {
  // GET and HEAD (the router hands HEAD to the GET route)
  r.on('GET', '/containers/{id}/archive', async (c, res) => {
    const rec = lookupContainer(c.engine, c.params.id!);
    const path = pathParam(c.query);
    await onRoot(c.engine, rec, async (root) => {
      const s = statInRoot(root, path);
      const header = Buffer.from(JSON.stringify(s.stat)).toString('base64');
      if (c.req.method === 'HEAD') {
        res.writeHead(200, { 'X-Docker-Container-Path-Stat': header });
        res.end();
        return;
      }
      const tar = await tarOut(root, s.rel);
      res.writeHead(200, { 'Content-Type': 'application/x-tar', 'X-Docker-Container-Path-Stat': header });
      await pipeline(tar, res);
    });
  });

  r.on('PUT', '/containers/{id}/archive', async (c, res) => {
    const rec = lookupContainer(c.engine, c.params.id!);
    if (rec.kind === 'vm') await onRoot(c.engine, rec, async () => undefined);
    const path = pathParam(c.query);
    const scratch = c.engine.images.tempPath('.cp');
    mkdirSync(scratch, { recursive: true, mode: 0o700 });
    try {
      // the upload first (a slow client holds no mount), then the copy into the root, mounted if stopped
      const file = join(scratch, 'in.tar');
      await pipeline(c.req, createWriteStream(file, { mode: 0o600 }));
      await onRoot(c.engine, rec, (root) => copyIn(root, path, file, scratch, flag(c.query, 'noOverwriteDirNonDir')));
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
    res.writeHead(200);
    res.end();
  });

  r.on('GET', '/containers/{id}/changes', async (c, res) => {
    const rec = lookupContainer(c.engine, c.params.id!);
    if (rec.kind === 'vm')
      throw new ApiError(501, `docker diff of VM ${rec.name} is not supported: its root is a disk image`);
    const changes = await containerChanges(c.engine, rec);
    sendJson(res, 200, changes.length ? changes : null);
  });

  r.on('GET', '/containers/{id}/export', async (c, res) => {
    const rec = lookupContainer(c.engine, c.params.id!);
    await onRoot(c.engine, rec, async (root) => {
      const { create } = await import('tar');
      const tar = create({ cwd: root, follow: false, portable: false }, ['.']) as unknown as NodeJS.ReadableStream;
      res.writeHead(200, { 'Content-Type': 'application/x-tar' });
      await pipeline(tar, res);
    });
  });
}
