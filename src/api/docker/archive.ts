/**
 * docker cp: `/containers/{id}/archive` GET (a tar of a path, with its stat in X-Docker-Container-Path-Stat),
 * HEAD (the stat only) and PUT (a tar extracted into a directory, never outside the container's root; see
 * engine/cp.ts), on running and stopped containers alike, `/containers/{id}/export` (the whole root as a tar),
 * `/changes` (docker diff) and `POST /commit` (docker commit, engine/commit.ts).
 */
import { createWriteStream, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { commitInstance } from '../../engine/commit.js';
import { containerChanges, copyIn, exportContainer, statInRoot, tarOut, withContainerRoot } from '../../engine/cp.js';
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
      // without copyUIDGID (docker cp -a) what is copied belongs to the container's root, as docker's daemon does
      const owner = flag(c.query, 'copyUIDGID') ? undefined : { uid: 0, gid: 0 };
      await onRoot(c.engine, rec, (root) =>
        copyIn(root, path, file, scratch, flag(c.query, 'noOverwriteDirNonDir'), owner),
      );
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
    if (rec.kind === 'vm') await onRoot(c.engine, rec, async () => undefined);
    res.writeHead(200, { 'Content-Type': 'application/x-tar' });
    await exportContainer(c.engine, rec, res);
  });

  // docker commit: ?container=&repo=&tag=&comment=&author=&changes= (repeatable)&pause= (hull does not pause)
  r.on('POST', '/commit', async (c, res) => {
    const ref = c.query.get('container');
    if (!ref) throw new ApiError(400, 'commit needs ?container=');
    const rec = lookupContainer(c.engine, ref);
    if (rec.kind === 'vm')
      throw new ApiError(501, `docker commit of VM ${rec.name} is not supported: its root is a disk image`);
    const repo = c.query.get('repo') ?? '';
    const tag = c.query.get('tag') ?? '';
    if (!repo && tag) throw new ApiError(400, 'commit: a tag needs a repository (?repo=)');
    const changes = c.query
      .getAll('changes')
      .flatMap((v) => v.split('\n'))
      .filter((v) => v.trim() !== '');
    const comment = c.query.get('comment');
    const author = c.query.get('author');
    c.req.resume();
    const img = await commitInstance(c.engine, rec, {
      ...(repo ? { ref: tag ? `${repo}:${tag}` : repo } : {}),
      ...(changes.length ? { changes } : {}),
      ...(comment ? { message: comment } : {}),
      ...(author ? { author } : {}),
    });
    sendJson(res, 201, { Id: img.id });
  });
}
