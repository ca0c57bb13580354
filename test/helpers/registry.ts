/**
 * Registries for tests, all on 127.0.0.1:
 * - {@link startDockerRegistry}: Debian's docker-registry (distribution 2.8) with a temp storage dir;
 * - {@link FaultRegistry}: a small node:http registry that misbehaves on purpose, per repository;
 * - {@link OciLayoutBuilder}: writes OCI image layouts (multi-layer images, indexes) for skopeo to push.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { waitFor } from './hull.js';

export const sha256 = (b: Buffer | string) => 'sha256:' + createHash('sha256').update(b).digest('hex');

/** A TCP port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface RunningRegistry {
  host: string;
  stop(): Promise<void>;
}

/** docker-registry serve on a free port with a temp storage dir (both removed by stop()). */
export async function startDockerRegistry(): Promise<RunningRegistry> {
  const dir = mkdtempSync('/tmp/hull-test-registry-');
  const port = await freePort();
  writeFileSync(
    join(dir, 'config.yml'),
    [
      'version: 0.1',
      'log:',
      '  level: error',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${dir}/data`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn('docker-registry', ['serve', join(dir, 'config.yml')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await waitFor(
    `docker-registry on ${port} (${stderr})`,
    async () => {
      try {
        return (await fetch(`http://127.0.0.1:${port}/v2/`)).ok;
      } catch {
        return false;
      }
    },
    15_000,
    100,
  );
  return {
    host: `127.0.0.1:${port}`,
    async stop() {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `skopeo ARGS`, throwing with its stderr on failure; returns stdout. */
export function skopeo(...args: string[]): string {
  const r = spawnSync('skopeo', args, { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`skopeo ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** A layer tarball (`tar` of the given files), with its gzip form. */
export function makeLayer(files: Record<string, string>): { tar: Buffer; gz: Buffer; diffId: string } {
  const dir = mkdtempSync('/tmp/hull-test-layer-');
  try {
    const root = join(dir, 'root');
    for (const [name, content] of Object.entries(files)) {
      mkdirSync(join(root, name, '..'), { recursive: true });
      writeFileSync(join(root, name), content);
    }
    const r = spawnSync(
      'tar',
      [
        '--sort=name',
        '--mtime=@0',
        '--owner=0',
        '--group=0',
        '--numeric-owner',
        '-C',
        root,
        '-cf',
        join(dir, 'l.tar'),
        '.',
      ],
      { encoding: 'utf8' },
    );
    if (r.status !== 0) throw new Error(`tar failed: ${r.stderr}`);
    const tar = readFileSync(join(dir, 'l.tar'));
    return { tar, gz: gzipSync(tar), diffId: sha256(tar) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface Desc {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string };
  annotations?: Record<string, string>;
}

/** Writes an OCI image layout (blobs and index.json) into `dir`. */
export class OciLayoutBuilder {
  private readonly entries: Desc[] = [];
  constructor(readonly dir: string) {
    mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
    writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  }

  blob(mediaType: string, data: Buffer | string): Desc {
    const buf = Buffer.from(data);
    const digest = sha256(buf);
    writeFileSync(join(this.dir, 'blobs', 'sha256', digest.slice(7)), buf);
    return { mediaType, digest, size: buf.length };
  }

  /** An image manifest of the given layers (blobs already written) and diffIDs. */
  image(layers: Desc[], diffIds: string[], arch: string, cmd: string[] = ['sh']): Desc {
    const config = this.blob(
      'application/vnd.oci.image.config.v1+json',
      JSON.stringify({
        architecture: arch,
        os: 'linux',
        created: '2024-01-01T00:00:00Z',
        config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: cmd },
        rootfs: { type: 'layers', diff_ids: diffIds },
      }),
    );
    const m = this.blob(
      'application/vnd.oci.image.manifest.v1+json',
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config,
        layers,
      }),
    );
    return { ...m, platform: { os: 'linux', architecture: arch } };
  }

  /** An image index of manifests. */
  index(manifests: Desc[]): Desc {
    return this.blob(
      'application/vnd.oci.image.index.v1+json',
      JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }),
    );
  }

  /** Name `desc` in index.json (skopeo's `oci:DIR:NAME`). */
  name(desc: Desc, name: string): void {
    this.entries.push({ ...desc, annotations: { 'org.opencontainers.image.ref.name': name } });
    writeFileSync(join(this.dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: this.entries }));
  }
}

/** What a repository of the fault registry does. */
export type Fault = 'none' | 'bad-blob' | 'bearer' | 'busy' | 'limited' | 'missing' | 'flaky-blob';

interface Served {
  manifest: Buffer;
  mediaType: string;
  blobs: Map<string, Buffer>;
}

/**
 * A registry that serves one small image (docker schema 2 manifest, one gzip layer) under
 * `<fault>/img:1` for every {@link Fault}, misbehaving as the repository's name says.
 * With `basic`, every request needs basic auth `alice:secret`.
 */
export class FaultRegistry {
  private server!: Server;
  host = '';
  readonly image: Served & { configDigest: string; layerDigest: string };
  /** requests seen, as `METHOD path` */
  readonly log: string[] = [];
  private readonly hits = new Map<string, number>();

  constructor(private readonly basic = false) {
    const layer = makeLayer({ 'hello.txt': 'from the fault registry\n' });
    const config = Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: { Cmd: ['/hello.txt'] },
        rootfs: { type: 'layers', diff_ids: [layer.diffId] },
      }),
    );
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
        config: {
          mediaType: 'application/vnd.docker.container.image.v1+json',
          digest: sha256(config),
          size: config.length,
        },
        layers: [
          {
            mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
            digest: sha256(layer.gz),
            size: layer.gz.length,
          },
        ],
      }),
    );
    this.image = {
      manifest,
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      blobs: new Map([
        [sha256(config), config],
        [sha256(layer.gz), layer.gz],
      ]),
      configDigest: sha256(config),
      layerDigest: sha256(layer.gz),
    };
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.host = `127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }

  private count(key: string): number {
    const n = (this.hits.get(key) ?? 0) + 1;
    this.hits.set(key, n);
    return n;
  }

  private handle(req: IncomingMessage, res: ServerResponse): unknown {
    const url = new URL(req.url ?? '/', `http://${this.host}`);
    this.log.push(`${req.method} ${url.pathname}${url.search}`);
    const error = (status: number, code: string, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
      res.end(JSON.stringify({ errors: [{ code, message: code.toLowerCase().replace(/_/g, ' ') }] }));
    };
    if (this.basic && req.headers.authorization !== 'Basic ' + Buffer.from('alice:secret').toString('base64')) {
      return error(401, 'UNAUTHORIZED', { 'WWW-Authenticate': 'Basic realm="fault"' });
    }
    if (url.pathname === '/token') {
      const scopes = url.searchParams.getAll('scope');
      if (!scopes.includes('repository:bearer/img:pull')) return error(403, 'DENIED');
      res.writeHead(200, { 'Content-Type': 'application/json' });
      return res.end(JSON.stringify({ token: 'tok-123', expires_in: 300 }));
    }
    if (url.pathname === '/v2/') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      return res.end('{}');
    }
    const m = /^\/v2\/([a-z-]+)\/img\/(manifests|blobs)\/(.+)$/.exec(url.pathname);
    if (!m) return error(404, 'NAME_UNKNOWN');
    const [, fault, kind, ref] = m as unknown as [string, Fault, string, string];
    if (fault === 'bearer' && req.headers.authorization !== 'Bearer tok-123') {
      return error(401, 'UNAUTHORIZED', {
        'WWW-Authenticate': `Bearer realm="http://${this.host}/token",service="fault",scope="repository:bearer/img:pull"`,
      });
    }
    if (fault === 'limited' || (fault === 'busy' && this.count(`busy ${kind}`) <= 2))
      return error(429, 'TOOMANYREQUESTS', { 'Retry-After': '0' });
    if (kind === 'manifests') {
      if (fault === 'missing') return error(404, 'MANIFEST_UNKNOWN');
      if (ref !== '1' && ref !== sha256(this.image.manifest)) return error(404, 'MANIFEST_UNKNOWN');
      res.writeHead(200, {
        'Content-Type': this.image.mediaType,
        'Docker-Content-Digest': sha256(this.image.manifest),
        'Content-Length': String(this.image.manifest.length),
      });
      return res.end(req.method === 'HEAD' ? undefined : this.image.manifest);
    }
    let blob = this.image.blobs.get(ref);
    if (!blob) return error(404, 'BLOB_UNKNOWN');
    if (ref === this.image.layerDigest && fault === 'bad-blob') {
      blob = Buffer.from(blob);
      blob[blob.length - 1] ^= 0xff;
    }
    res.writeHead(200, {
      'Content-Type': 'application/octet-stream',
      'Content-Length': String(blob.length),
      'Docker-Content-Digest': ref,
    });
    if (req.method === 'HEAD') return res.end();
    if (ref === this.image.layerDigest && fault === 'flaky-blob' && this.count('flaky') === 1) {
      res.write(blob.subarray(0, Math.floor(blob.length / 2)));
      setTimeout(() => res.destroy(), 20);
      return;
    }
    res.end(blob);
  }
}
