/** docker's `/images/…` endpoints: list, inspect, pull (docker's JSON progress stream), tag, remove. */
import { NotFoundError } from '../../common/errors.js';
import type { ImageRecord } from '../../engine/transfer.js';
import { loadImages, pull, push, saveImages, type TransferEvent } from '../../engine/transfer.js';
import type { Call } from '../http.js';
import { checkImageRemovable, removeImage } from '../../engine/images.js';
import { ApiError, filters, flag, messageOf, type Router, sendJson } from '../http.js';
import type { Streams } from '../streams.js';

const seconds = (iso: string) => Math.max(0, Math.floor(Date.parse(iso) / 1000) || 0);

/** `busybox:latest` names and `repo@sha256:…` digests of an image. */
function tagsOf(img: ImageRecord): { tags: string[]; digests: string[] } {
  const tags = img.names.filter((n) => !n.includes('@'));
  const repos = new Set(
    img.names.map((n) => (n.includes('@') ? n.slice(0, n.indexOf('@')) : n.slice(0, n.lastIndexOf(':')))),
  );
  return { tags, digests: [...repos].map((r) => `${r}@${img.manifestDigest}`) };
}

export function imageListEntry(img: ImageRecord): Record<string, unknown> {
  const { tags, digests } = tagsOf(img);
  return {
    Id: img.id,
    ParentId: '',
    RepoTags: tags.length ? tags : ['<none>:<none>'],
    RepoDigests: digests,
    Created: seconds(img.created),
    Size: img.size,
    VirtualSize: img.size,
    SharedSize: -1,
    Labels: img.config.config?.Labels ?? null,
    Containers: -1,
  };
}

function inspectEntry(img: ImageRecord): Record<string, unknown> {
  const { tags, digests } = tagsOf(img);
  const cfg = img.config.config ?? {};
  return {
    Id: img.id,
    RepoTags: tags,
    RepoDigests: digests,
    Parent: '',
    Comment: '',
    Author: img.config.author ?? '',
    Created: img.created,
    Container: '',
    Config: {
      Env: cfg.Env ?? [],
      Cmd: cfg.Cmd ?? null,
      Entrypoint: cfg.Entrypoint ?? null,
      WorkingDir: cfg.WorkingDir ?? '',
      User: cfg.User ?? '',
      Labels: cfg.Labels ?? null,
      ExposedPorts: cfg.ExposedPorts ?? null,
      StopSignal: cfg.StopSignal ?? '',
      Volumes: cfg.Volumes ?? null,
    },
    Architecture: img.config.architecture,
    Os: img.config.os,
    Size: img.size,
    VirtualSize: img.size,
    RootFS: { Type: 'layers', Layers: img.layers.map((l) => l.diffId) },
    Metadata: { LastTagTime: '0001-01-01T00:00:00Z' },
  };
}

async function resolveImage(engine: import('../../engine/engine.js').Engine, ref: string): Promise<ImageRecord> {
  try {
    return await engine.images.resolve(ref);
  } catch (e) {
    if (e instanceof NotFoundError) throw new ApiError(404, `No such image: ${ref}`);
    throw e;
  }
}

/** A transfer event as a line of docker's progress stream. */
function progressLine(e: TransferEvent): Record<string, unknown> | null {
  if (e.kind === 'resolved') return null;
  const id = e.digest.replace(/^sha256:/, '').slice(0, 12);
  switch (e.state) {
    case 'waiting':
      return { status: 'Pulling fs layer', progressDetail: {}, id };
    case 'exists':
    case 'mounted':
      return { status: 'Already exists', progressDetail: {}, id };
    case 'transferring':
      return { status: 'Downloading', progressDetail: { current: e.done, total: e.size }, id };
    case 'retrying':
      return { status: 'Retrying', progressDetail: {}, id };
    case 'done':
      return { status: 'Pull complete', progressDetail: {}, id };
  }
}

/**
 * The credentials a docker client sent for this request (X-Registry-Auth: base64url JSON
 * {username, password, serveraddress}); undefined when none (docker sends `{}` then).
 */
export function registryAuth(c: Call): { username: string; password: string } | undefined {
  const h = c.req.headers['x-registry-auth'];
  if (typeof h !== 'string' || !h) return undefined;
  let v: { username?: unknown; password?: unknown };
  try {
    v = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as typeof v;
  } catch {
    throw new ApiError(400, 'X-Registry-Auth is not base64url-encoded JSON');
  }
  if (typeof v?.username !== 'string' || !v.username) return undefined;
  return { username: v.username, password: typeof v.password === 'string' ? v.password : '' };
}

/** A push event as a line of docker's progress stream. */
function pushLine(e: TransferEvent): Record<string, unknown> | null {
  if (e.kind === 'resolved') return null;
  const id = e.digest.replace(/^sha256:/, '').slice(0, 12);
  switch (e.state) {
    case 'waiting':
      return { status: 'Preparing', progressDetail: {}, id };
    case 'exists':
    case 'mounted':
      return { status: 'Layer already exists', progressDetail: {}, id };
    case 'transferring':
      return { status: 'Pushing', progressDetail: { current: e.done, total: e.size }, id };
    case 'retrying':
      return { status: 'Retrying', progressDetail: {}, id };
    case 'done':
      return { status: 'Pushed', progressDetail: {}, id };
  }
}

export function imageRoutes(r: Router, streams: Streams): void {
  r.on('POST', '/images/{name*}/push', async (c, res) => {
    const name = c.params.name!;
    const tag = c.query.get('tag') ?? '';
    const ref = !tag ? name : tag.startsWith('sha256:') ? `${name}@${tag}` : `${name}:${tag}`;
    const auth = registryAuth(c);
    await resolveImage(c.engine, ref);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    const ac = streams.track(res);
    const line = (v: Record<string, unknown>) => {
      if (!res.destroyed) res.write(JSON.stringify(v) + '\r\n');
    };
    line({ status: `The push refers to repository [${name}]` });
    const last = new Map<string, string>();
    try {
      const out = await push(c.engine, ref, ref, {
        signal: ac.signal,
        ...(auth ? { auth } : {}),
        onEvent: (e) => {
          const l = pushLine(e);
          if (!l) return;
          const key = `${l.status}:${e.kind === 'blob' && e.size ? Math.floor((e.done / e.size) * 100) : 0}`;
          if (last.get(l.id as string) === key) return;
          last.set(l.id as string, key);
          line(l);
        },
      });
      line({ status: `${tag || 'latest'}: digest: ${out.digest}` });
      line({ progressDetail: {}, aux: { Tag: tag || 'latest', Digest: out.digest } });
    } catch (e) {
      if (!ac.signal.aborted) line({ errorDetail: { message: messageOf(e) }, error: messageOf(e) });
    } finally {
      streams.untrack(res);
      res.end();
    }
  });

  // docker save: one image (/images/{name}/get) or several (/images/get?names=…), as a docker-archive tar
  const save = async (c: Call, res: import('node:http').ServerResponse, refs: string[]) => {
    if (refs.length === 0) throw new ApiError(400, 'save needs at least one image: ?names=');
    for (const ref of refs) await resolveImage(c.engine, ref);
    res.writeHead(200, { 'Content-Type': 'application/x-tar' });
    await saveImages(c.engine, refs, res, 'docker-archive');
    if (!res.writableEnded) res.end();
  };
  r.on('GET', '/images/get', async (c, res) => save(c, res, c.query.getAll('names')));
  r.on('GET', '/images/{name*}/get', async (c, res) => save(c, res, [c.params.name!]));

  r.on('POST', '/images/load', async (c, res) => {
    const loaded = await loadImages(c.engine, c.req);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    for (const l of loaded)
      res.write(
        JSON.stringify({ stream: l.name ? `Loaded image: ${l.name}\n` : `Loaded image ID: ${l.record.id}\n` }) + '\r\n',
      );
    res.end();
  });

  r.on('GET', '/images/json', async (c, res) => {
    const f = filters(c.query);
    let imgs = await c.engine.images.list();
    if (!flag(c.query, 'all') && !f.dangling?.length) imgs = imgs.filter((i) => i.names.length > 0);
    if (f.dangling?.[0] === 'true') imgs = imgs.filter((i) => i.names.length === 0);
    if (f.reference?.length)
      imgs = imgs.filter((i) =>
        i.names.some((n) => f.reference!.some((want) => n === want || n.startsWith(`${want}:`))),
      );
    sendJson(res, 200, imgs.map(imageListEntry));
  });

  r.on('GET', '/images/{name*}/json', async (c, res) => {
    sendJson(res, 200, inspectEntry(await resolveImage(c.engine, c.params.name!)));
  });

  r.on('POST', '/images/{name*}/tag', async (c, res) => {
    const repo = c.query.get('repo');
    if (!repo) throw new ApiError(400, 'tag needs ?repo=');
    const tag = c.query.get('tag');
    await resolveImage(c.engine, c.params.name!);
    await c.engine.images.tag(c.params.name!, tag ? `${repo}:${tag}` : repo);
    res.writeHead(201);
    res.end();
  });

  r.on('DELETE', '/images/{name*}', async (c, res) => {
    const ref = c.params.name!;
    await resolveImage(c.engine, ref);
    const force = flag(c.query, 'force');
    await checkImageRemovable(c.engine, ref, force);
    const lines = await removeImage(c.engine, ref, force);
    // hull's lines are "Untagged: x" / "Deleted: sha256:…", docker's items {Untagged} / {Deleted}
    sendJson(
      res,
      200,
      lines.map((l) => {
        const i = l.indexOf(': ');
        return i > 0 ? { [l.slice(0, i)]: l.slice(i + 2) } : { Deleted: l };
      }),
    );
  });

  r.on('POST', '/images/create', async (c, res) => {
    const from = c.query.get('fromImage');
    if (!from)
      throw new ApiError(400, c.query.get('fromSrc') ? 'docker import is not supported yet' : 'fromImage is missing');
    const tag = c.query.get('tag') ?? '';
    const ref = !tag || from.includes('@') ? from : tag.startsWith('sha256:') ? `${from}@${tag}` : `${from}:${tag}`;
    // as dockerd: the answer's status stays open until the first progress, so that a pull that fails at once
    // (no such image, no registry) answers with its status code (404, 500…) and docker's error body
    const ac = streams.track(res);
    let started = false;
    const line = (v: Record<string, unknown>) => {
      if (res.destroyed) return;
      if (!started) {
        started = true;
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.write(JSON.stringify({ status: `Pulling from ${from}`, id: tag || 'latest' }) + '\r\n');
      }
      res.write(JSON.stringify(v) + '\r\n');
    };
    const last = new Map<string, string>();
    try {
      const platform = c.query.get('platform');
      const auth = registryAuth(c);
      const img = await pull(c.engine, ref, {
        ...(platform ? { platform } : {}),
        ...(auth ? { auth } : {}),
        signal: ac.signal,
        onEvent: (e) => {
          const l = progressLine(e);
          if (!l) return;
          // one line per state change, and downloads at most once per percent
          const key = `${l.status}:${e.kind === 'blob' && e.size ? Math.floor((e.done / e.size) * 100) : 0}`;
          if (last.get(l.id as string) === key) return;
          last.set(l.id as string, key);
          line(l);
        },
      });
      line({ status: `Digest: ${img.manifestDigest}` });
      line({ status: `Status: Downloaded newer image for ${ref}` });
    } catch (e) {
      if (!started && !ac.signal.aborted) {
        streams.untrack(res);
        throw e;
      }
      if (!ac.signal.aborted) line({ errorDetail: { message: messageOf(e) }, error: messageOf(e) });
    }
    streams.untrack(res);
    res.end();
  });
}
