/**
 * `POST /build` (docker build with DOCKER_BUILDKIT=0, docker-compose build): the context comes as a tar (plain or
 * gzip), is extracted with hull's hardened extractor into a scratch directory and built by hull's builder; the
 * answer is docker's JSON stream (`{"stream": "Step 1/3 : FROM busybox\n"}`, `{"aux": {"ID": …}}`, errors as
 * `{"errorDetail": {"message": …}, "error": …}`).
 */
import { createWriteStream, mkdirSync, rmSync } from 'node:fs';
import { join, normalize } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { BuildOptions } from '../../engine/build/builder.js';
import { extractArchive } from '../../engine/cp.js';
import type { Engine } from '../../engine/engine.js';
import type { ImageRecord } from '../../engine/transfer.js';
import { ApiError, type Call, flag, messageOf, type Router } from '../http.js';
import type { Streams } from '../streams.js';

/** A JSON object of strings from a query parameter (buildargs, labels). */
function stringMap(q: URLSearchParams, name: string): Record<string, string> {
  const v = q.get(name);
  if (!v) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch {
    throw new ApiError(400, `${name} is not a JSON object`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new ApiError(400, `${name} is not a JSON object`);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(parsed as Record<string, unknown>)) if (typeof x === 'string') out[k] = x;
  return out;
}

/** hull's progress line in docker's words ("STEP 1/3: FROM busybox" → "Step 1/3 : FROM busybox"). */
function dockerLine(line: string): string {
  const m = /^STEP (\d+\/\d+): (.*)$/s.exec(line);
  return m ? `Step ${m[1]} : ${m[2]}` : line;
}

/** A build request's context, received and extracted into a scratch directory (the caller removes `scratch`). */
export interface ReceivedContext {
  scratch: string;
  dir: string;
  /** the Containerfile, inside dir */
  file: string | undefined;
  tags: string[];
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
  target: string | undefined;
  noCache: boolean;
}

/**
 * Receive a build's tar context (docker's query parameters: dockerfile, t, buildargs, labels, target, nocache) and
 * extract it with hull's hardened extractor; a bad request or archive is a 400, and nothing is left behind.
 */
export async function receiveContext(c: Call, defaultFile?: string): Promise<ReceivedContext> {
  const q = c.query;
  if (q.get('remote')) throw new ApiError(400, 'building from a remote context is not supported: send a tar');
  const dockerfile = q.get('dockerfile') || defaultFile;
  const rel = dockerfile === undefined ? undefined : normalize(dockerfile);
  if (rel !== undefined && (rel.startsWith('..') || rel.startsWith('/')))
    throw new ApiError(400, `the Dockerfile ${dockerfile} must be inside the build context`);
  const buildArgs = stringMap(q, 'buildargs');
  const labels = stringMap(q, 'labels');
  const scratch = c.engine.images.tempPath('.build-context');
  mkdirSync(scratch, { recursive: true, mode: 0o700 });
  try {
    const file = join(scratch, 'context.tar');
    await pipeline(c.req, createWriteStream(file, { mode: 0o600 }));
    const dir = join(scratch, 'context');
    mkdirSync(dir, { mode: 0o755 });
    await extractArchive(file, dir, scratch).catch((e: unknown) => {
      throw new ApiError(400, `the build context is not a valid tar archive: ${messageOf(e)}`);
    });
    rmSync(file);
    return {
      scratch,
      dir,
      file: rel === undefined ? undefined : join(dir, rel),
      tags: q.getAll('t').filter(Boolean),
      buildArgs,
      labels,
      target: q.get('target') || undefined,
      noCache: flag(q, 'nocache'),
    };
  } catch (e) {
    rmSync(scratch, { recursive: true, force: true });
    throw e;
  }
}

/** Builds a received context with hull's builder: log gets its progress lines, output what the RUN steps print. */
export async function buildReceived(
  engine: Engine,
  rc: ReceivedContext,
  log: BuildOptions['log'],
  output: BuildOptions['output'],
): Promise<ImageRecord> {
  const { Builder } = await import('../../engine/build/builder.js');
  return new Builder(engine, {
    contextDir: rc.dir,
    ...(rc.file ? { file: rc.file } : {}),
    tags: rc.tags,
    buildArgs: rc.buildArgs,
    ...(rc.target ? { target: rc.target } : {}),
    noCache: rc.noCache,
    ...(Object.keys(rc.labels).length ? { labels: rc.labels } : {}),
    log,
    output,
  }).build();
}

export function buildRoutes(r: Router, streams: Streams): void {
  r.on('POST', '/build', async (c, res) => {
    const quiet = flag(c.query, 'q');
    const rc = await receiveContext(c, 'Dockerfile');
    try {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      const ac = streams.track(res);
      const send = (v: Record<string, unknown>) => {
        if (!res.destroyed) res.write(JSON.stringify(v) + '\r\n');
      };
      try {
        const image = await buildReceived(
          c.engine,
          rc,
          (line) => {
            if (!quiet) send({ stream: `${dockerLine(line)}\n` });
          },
          (text) => {
            if (!quiet) send({ stream: text });
          },
        );
        send({ aux: { ID: image.id } });
        send({
          stream: quiet ? `${image.id}\n` : `Successfully built ${image.id.replace(/^sha256:/, '').slice(0, 12)}\n`,
        });
      } catch (e) {
        if (!ac.signal.aborted) send({ errorDetail: { message: messageOf(e) }, error: messageOf(e) });
      } finally {
        streams.untrack(res);
        res.end();
      }
    } finally {
      rmSync(rc.scratch, { recursive: true, force: true });
    }
  });
}
