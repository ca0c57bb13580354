/**
 * `hull daemon` driven through dockerode (docker-modem underneath), the way testcontainers and other Node
 * clients use the Docker Engine API: create with a HostConfig, start, inspect, logs (the multiplexed stream and
 * its 8-byte frame headers), exec with and without a TTY, attach, archives both ways, wait with conditions,
 * stats, build from a tar context, pull from a real registry, networks, volumes, events with filters, and
 * errors with docker's status codes. dockerd is never started.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Duplex, PassThrough, Readable } from 'node:stream';
import Docker from 'dockerode';
import { Header } from 'tar';
import { type Daemon, startDaemon, stopIfRunning } from './helpers/daemon.js';
import { HullRoot, waitFor } from './helpers/hull.js';
import { freePort, type RunningRegistry, startDockerRegistry } from './helpers/registry.js';
import { rawTar } from './helpers/tar.js';

const root = new HullRoot('dockerode');
const work = mkdtempSync('/tmp/hull-test-dockerode-');
const socket = join(work, 'hull.sock');

/** Everything a stream gives, as one buffer. */
function collect(s: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    s.on('data', (b: Buffer) => parts.push(Buffer.from(b)));
    s.once('end', () => resolve(Buffer.concat(parts)));
    s.once('error', reject);
  });
}

/** docker's multiplexed stream split into its frames: [stream type, payload]; throws on a malformed header. */
function frames(buf: Buffer): [number, string][] {
  const out: [number, string][] = [];
  let off = 0;
  while (off < buf.length) {
    assert.ok(off + 8 <= buf.length, 'a frame header is cut short');
    const type = buf[off]!;
    assert.ok(type === 0 || type === 1 || type === 2, `stream type ${type}`);
    assert.deepEqual([...buf.subarray(off + 1, off + 4)], [0, 0, 0], 'header bytes 1-3 are zero');
    const len = buf.readUInt32BE(off + 4);
    assert.ok(off + 8 + len <= buf.length, 'a frame is cut short');
    out.push([type, buf.subarray(off + 8, off + 8 + len).toString()]);
    off += 8 + len;
  }
  return out;
}

/** stdout and stderr of a multiplexed stream, through docker-modem's demuxStream. */
async function demux(docker: Docker, s: Readable): Promise<{ stdout: string; stderr: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  const o = collect(out);
  const e = collect(err);
  docker.modem.demuxStream(s, out, err);
  await new Promise<void>((resolve, reject) => {
    s.once('end', resolve);
    s.once('close', resolve);
    s.once('error', reject);
  });
  out.end();
  err.end();
  return { stdout: (await o).toString(), stderr: (await e).toString() };
}

/** A tar of files (and directories, paths ending in /). */
function tarOf(files: Record<string, string>): Buffer {
  return rawTar(
    Object.entries(files).map(([path, text]) =>
      path.endsWith('/') ? { path, type: 'Directory' } : { path, body: text },
    ),
  );
}

/** The names and bodies of the files of a tar. */
function untar(buf: Buffer): Map<string, string> {
  const files = new Map<string, string>();
  let off = 0;
  while (off + 512 <= buf.length) {
    const h = new Header(buf, off);
    if (!h.path) break;
    const size = h.size ?? 0;
    files.set(h.path, buf.subarray(off + 512, off + 512 + size).toString());
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

/** The status code of a dockerode error (docker-modem sets statusCode from the HTTP answer). */
async function statusOf(p: Promise<unknown>): Promise<{ status: number; message: string }> {
  try {
    await p;
  } catch (e) {
    const err = e as { statusCode?: number; json?: { message?: string }; message: string };
    return { status: err.statusCode ?? 0, message: err.json?.message ?? err.message };
  }
  assert.fail('expected an error');
}

describe('hull daemon through dockerode', () => {
  let daemon: Daemon;
  let docker: Docker;
  let registry: RunningRegistry;

  before(async () => {
    daemon = await startDaemon(root, socket);
    docker = new Docker({ socketPath: socket });
    registry = await startDockerRegistry();
  });
  after(async () => {
    await stopIfRunning(daemon);
    await registry?.stop();
    await root.dispose();
    rmSync(work, { recursive: true, force: true });
  });

  test('ping, version, info', async () => {
    assert.equal(String(await docker.ping()), 'OK');
    const v = await docker.version();
    assert.equal(v.ApiVersion, '1.41');
    const info = await docker.info();
    assert.equal(typeof info.Containers, 'number');
  });

  test('create with a HostConfig, start, inspect, logs demultiplexed, stop, remove', async () => {
    const host = join(work, 'bind');
    mkdirSync(host);
    writeFileSync(join(host, 'greeting'), 'from-the-host\n');
    const port = await freePort();
    const c = await docker.createContainer({
      name: 'dk-web',
      Image: 'busybox',
      Cmd: ['sh', '-c', 'cat /data/greeting; echo to-err >&2; exec httpd -f -p 8080 -h /data'],
      Labels: { 'org.test': 'dockerode' },
      Env: ['A=1'],
      ExposedPorts: { '8080/tcp': {} },
      HostConfig: {
        Binds: [`${host}:/data:ro`],
        PortBindings: { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: String(port) }] },
        RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 2 },
        Memory: 64 * 1024 * 1024,
      },
    });
    assert.match(c.id, /^[0-9a-f]{64}$/);
    const created = await c.inspect();
    assert.equal(created.State.Status, 'created');
    assert.equal(created.Name, '/dk-web');
    assert.equal(created.HostConfig.Memory, 64 * 1024 * 1024);
    assert.deepEqual(created.HostConfig.RestartPolicy, { Name: 'on-failure', MaximumRetryCount: 2 });
    assert.deepEqual(created.HostConfig.Binds, [`${host}:/data:ro`]);
    await c.start();
    const running = await c.inspect();
    assert.equal(running.State.Running, true);
    assert.ok(running.State.Pid > 0);
    assert.equal(running.Config.Labels['org.test'], 'dockerode');
    assert.deepEqual(running.NetworkSettings.Ports['8080/tcp'], [{ HostIp: '127.0.0.1', HostPort: String(port) }]);

    // the port binding reaches httpd, which serves the bind-mounted file
    await waitFor('httpd through the published port', async () => {
      const r = await fetch(`http://127.0.0.1:${port}/greeting`).catch(() => undefined);
      return r?.status === 200 && (await r.text()) === 'from-the-host\n';
    });

    // logs without a TTY: docker's frames, stdout (1) and stderr (2) apart
    await waitFor('both log lines', async () => {
      const raw = (await c.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
      return frames(raw).length >= 2;
    });
    const raw = (await c.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
    const f = frames(raw);
    assert.deepEqual(
      f.map(([t, s]) => `${t}:${s}`).sort(),
      ['1:from-the-host\n', '2:to-err\n'],
      'one frame per line, on its stream',
    );
    // followed, through demuxStream; ends when the container stops
    const followed = (await c.logs({ stdout: true, stderr: true, follow: true })) as unknown as Readable;
    const d = demux(docker, followed);
    await c.stop({ t: 1 });
    const both = await d;
    assert.equal(both.stdout, 'from-the-host\n');
    assert.equal(both.stderr, 'to-err\n');
    const stopped = await c.inspect();
    assert.equal(stopped.State.Running, false);
    assert.equal(stopped.State.Status, 'exited');
    await c.remove();
    assert.equal((await statusOf(c.inspect())).status, 404);
  });

  test('exec without and with a TTY (resize), attach, wait with conditions, kill', async () => {
    const c = await docker.createContainer({
      Image: 'busybox',
      Cmd: ['sh', '-c', 'read line; echo "got $line"; exec sleep 1000'],
      OpenStdin: true,
      StdinOnce: false,
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
    });
    const att = (await c.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true })) as Duplex;
    const got = new PassThrough();
    const gotText = collect(got);
    docker.modem.demuxStream(att, got, new PassThrough());
    await c.start();
    att.write('hello\n');
    let seen = '';
    got.on('data', (b: Buffer) => {
      seen += b.toString();
    });
    await waitFor('the attached output', async () => seen === 'got hello\n');

    // exec without a TTY: stdout and stderr framed apart, the exit code from inspect
    const ex = await c.exec({
      Cmd: ['sh', '-c', 'echo ex-out; echo ex-err >&2; exit 3'],
      AttachStdout: true,
      AttachStderr: true,
    });
    const exStream = await ex.start({ hijack: true, stdin: false });
    const exOut = await demux(docker, exStream);
    assert.deepEqual(exOut, { stdout: 'ex-out\n', stderr: 'ex-err\n' });
    const exInfo = await ex.inspect();
    assert.equal(exInfo.ExitCode, 3);
    assert.equal(exInfo.Running, false);

    // exec with a TTY: a raw stream (no frames); the size set by resize is what the command sees
    const tty = await c.exec({
      Cmd: ['sh', '-c', 'read x; stty size'],
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      Tty: true,
    });
    const ttyStream = (await tty.start({ hijack: true, stdin: true, Tty: true })) as Duplex;
    const ttyText = collect(ttyStream);
    await tty.resize({ h: 33, w: 121 });
    ttyStream.write('go\r');
    const ttyOut = (await ttyText).toString();
    assert.match(ttyOut, /33 121/);
    assert.equal(ttyOut.charCodeAt(0) === 1 || ttyOut.charCodeAt(0) === 2, false, 'no frame header on a TTY');

    // wait: not-running answers when the container stops; next-exit too
    const waited = c.wait({ condition: 'not-running' });
    await c.kill({ signal: 'SIGKILL' });
    const w = (await waited) as { StatusCode: number };
    assert.equal(w.StatusCode, 137);
    att.destroy();
    got.end();
    assert.equal((await gotText).toString(), 'got hello\n');
    // not-running on a stopped container answers at once
    assert.equal(((await c.wait({ condition: 'not-running' })) as { StatusCode: number }).StatusCode, 137);
    await c.remove({ force: true });
  });

  test('getArchive and putArchive, on a running container and on a created one (before its start)', async () => {
    const c = await docker.createContainer({ Image: 'busybox', Cmd: ['sleep', '1000'] });
    await c.start();
    await c.putArchive(tarOf({ 'sub/': '', 'sub/a.txt': 'alpha', 'b.txt': 'beta' }), { path: '/tmp' });
    const ex = await c.exec({ Cmd: ['cat', '/tmp/sub/a.txt', '/tmp/b.txt'], AttachStdout: true, AttachStderr: true });
    assert.equal((await demux(docker, await ex.start({ hijack: true, stdin: false }))).stdout, 'alphabeta');
    const archive = await collect((await c.getArchive({ path: '/tmp/sub' })) as unknown as Readable);
    assert.equal(untar(archive).get('sub/a.txt'), 'alpha');
    const info = await c.infoArchive({ path: '/tmp/b.txt' });
    assert.ok(info);
    assert.equal((await statusOf(c.getArchive({ path: '/no/such' }))).status, 404);
    await c.remove({ force: true });

    // as testcontainers' copyFilesToContainer: into a created container, before its start
    const pre = await docker.createContainer({ Image: 'busybox', Cmd: ['cat', '/etc/app/conf'] });
    await pre.putArchive(tarOf({ 'app/': '', 'app/conf': 'copied before start\n' }), { path: '/etc' });
    const waited = pre.wait({ condition: 'next-exit' });
    await pre.start();
    assert.equal(((await waited) as { StatusCode: number }).StatusCode, 0);
    assert.deepEqual(frames((await pre.logs({ stdout: true })) as unknown as Buffer), [[1, 'copied before start\n']]);
    // and out of it, exited
    assert.equal(
      untar(await collect((await pre.getArchive({ path: '/etc/app/conf' })) as unknown as Readable)).get('conf'),
      'copied before start\n',
    );
    await pre.remove();
  });

  test('stats one-shot and streamed', async () => {
    const c = await docker.createContainer({ Image: 'busybox', Cmd: ['sleep', '1000'] });
    await c.start();
    const one = (await c.stats({ stream: false })) as unknown as {
      read: string;
      memory_stats: { usage?: number };
      cpu_stats: { cpu_usage: { total_usage: number } };
      pids_stats: { current?: number };
    };
    assert.ok(Date.parse(one.read) > 0);
    assert.equal(typeof one.cpu_stats.cpu_usage.total_usage, 'number');
    assert.ok((one.pids_stats.current ?? 0) >= 1);
    const stream = (await c.stats({ stream: true })) as unknown as Readable;
    const samples: unknown[] = [];
    let buf = '';
    await new Promise<void>((resolve) => {
      stream.on('data', (b: Buffer) => {
        buf += b.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) samples.push(JSON.parse(line));
          if (samples.length === 2) {
            stream.destroy();
            resolve();
          }
        }
      });
    });
    assert.equal(samples.length, 2);
    await c.remove({ force: true });
  });

  test('build from a tar context: the JSON stream, then run the image', async () => {
    const context = tarOf({
      Dockerfile: 'FROM busybox\nCOPY hello.txt /hello.txt\nRUN echo built > /built.txt\nCMD ["cat", "/hello.txt"]\n',
      'hello.txt': 'hello from the context\n',
    });
    const stream = await docker.buildImage(Readable.from([context]) as unknown as NodeJS.ReadableStream, {
      t: 'dk-built:1',
    });
    const events = await new Promise<{ stream?: string; aux?: { ID: string }; error?: string }[]>((resolve, reject) =>
      docker.modem.followProgress(stream, (err, res) => (err ? reject(err) : resolve(res))),
    );
    assert.ok(!events.some((e) => e.error), JSON.stringify(events));
    assert.ok(
      events.some((e) => e.stream?.includes('Step 1/4')),
      JSON.stringify(events),
    );
    assert.ok(
      events.some((e) => /^sha256:[0-9a-f]{64}$/.test(e.aux?.ID ?? '')),
      JSON.stringify(events),
    );
    const img = await docker.getImage('dk-built:1').inspect();
    assert.deepEqual(img.Config.Cmd, ['cat', '/hello.txt']);
    const c = await docker.createContainer({ Image: 'dk-built:1' });
    const waited = c.wait({ condition: 'next-exit' });
    await c.start();
    assert.equal(((await waited) as { StatusCode: number }).StatusCode, 0);
    const logs = (await c.logs({ stdout: true })) as unknown as Buffer;
    assert.deepEqual(frames(logs), [[1, 'hello from the context\n']]);
    await c.remove();
    // a failing step: the error in the stream
    const bad = await docker.buildImage(
      Readable.from([tarOf({ Dockerfile: 'FROM busybox\nRUN exit 7\n' })]) as unknown as NodeJS.ReadableStream,
      { t: 'dk-bad:1' },
    );
    const badEvents = await new Promise<{ error?: string }[]>((resolve) =>
      docker.modem.followProgress(bad, (_err, res) => resolve(res ?? [])),
    );
    assert.ok(
      badEvents.some((e) => e.error),
      JSON.stringify(badEvents),
    );
    await docker.getImage('dk-built:1').remove();
  });

  test('pull from a registry (progress stream), tag, remove', async () => {
    const ref = `${registry.host}/dk/bb:1`;
    await root.ok('push', 'busybox', ref);
    const stream = await docker.pull(ref);
    const events = await new Promise<{ status?: string; error?: string }[]>((resolve, reject) =>
      docker.modem.followProgress(stream, (err, res) => (err ? reject(err) : resolve(res))),
    );
    assert.ok(
      events.some((e) => /Downloaded newer image|Image is up to date/.test(e.status ?? '')),
      JSON.stringify(events),
    );
    const list = await docker.listImages({ filters: { reference: [ref] } });
    assert.equal(list.length, 1);
    await docker.getImage(ref).tag({ repo: 'dk-tagged', tag: 'x' });
    assert.ok((await docker.getImage('dk-tagged:x').inspect()).Id);
    await docker.getImage('dk-tagged:x').remove();
    await docker.getImage(ref).remove();
    assert.equal((await statusOf(docker.getImage(ref).inspect())).status, 404);
    // a pull of what the registry lacks fails before any progress: docker's status (404) and message
    const missing = await statusOf(docker.pull(`${registry.host}/dk/none:1`));
    assert.equal(missing.status, 404, missing.message);
    assert.match(missing.message, /dk\/none/);
  });

  test('networks and volumes: create, inspect, list, connect, remove', async () => {
    const net = await docker.createNetwork({ Name: 'dk-net', Labels: { k: 'v' } });
    const ni = await net.inspect();
    assert.equal(ni.Name, 'dk-net');
    assert.equal(ni.Driver, 'bridge');
    const nets = await docker.listNetworks({ filters: { label: ['k=v'] } });
    assert.deepEqual(
      nets.map((n) => n.Name),
      ['dk-net'],
    );
    const vol = await docker.createVolume({ Name: 'dk-vol', Labels: { k: 'v' } });
    assert.equal(vol.name, 'dk-vol');
    const vi = await docker.getVolume('dk-vol').inspect();
    assert.equal(vi.Name, 'dk-vol');
    assert.ok(vi.Mountpoint);
    const vols = await docker.listVolumes({ filters: { name: ['dk-vol'] } });
    assert.equal(vols.Volumes.length, 1);

    const c = await docker.createContainer({
      Image: 'busybox',
      Cmd: ['sh', '-c', 'echo stored > /v/file; exec sleep 1000'],
      HostConfig: { NetworkMode: 'dk-net', Binds: ['dk-vol:/v'] },
    });
    await c.start();
    const ci = await c.inspect();
    assert.ok(ci.NetworkSettings.Networks['dk-net']?.IPAddress);
    assert.equal(ci.Mounts.find((m) => m.Destination === '/v')?.Name, 'dk-vol');
    assert.equal((await statusOf(net.remove())).status, 409, 'a network in use');
    assert.equal((await statusOf(docker.getVolume('dk-vol').remove())).status, 409, 'a volume in use');
    await c.remove({ force: true });
    await net.remove();
    await docker.getVolume('dk-vol').remove();
    assert.equal((await statusOf(net.inspect())).status, 404);
    assert.equal((await statusOf(docker.getVolume('dk-vol').inspect())).status, 404);
  });

  test('events with filters', async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    const c = await docker.createContainer({ name: 'dk-ev', Image: 'busybox', Cmd: ['true'] });
    const waited = c.wait({ condition: 'next-exit' });
    await c.start();
    await waited;
    await c.remove();
    const until = Math.floor(Date.now() / 1000) + 1;
    const stream = (await docker.getEvents({
      since,
      until,
      filters: { type: ['container'], container: ['dk-ev'], event: ['start', 'die', 'destroy'] },
    })) as unknown as Readable;
    const text = (await collect(stream)).toString();
    const evs = text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { Type: string; Action: string; Actor: { Attributes: { name: string } } });
    assert.deepEqual(
      evs.map((e) => e.Action),
      ['start', 'die', 'destroy'],
    );
    assert.ok(evs.every((e) => e.Type === 'container' && e.Actor.Attributes.name === 'dk-ev'));
  });

  test("listContainers: docker filters (the engine's listing), limit, and size=1 (SizeRw, SizeRootFs)", async () => {
    const a = await docker.createContainer({
      name: 'dk-list-a',
      Image: 'busybox',
      Cmd: ['sh', '-c', 'head -c 1048576 /dev/zero > /big'],
      Labels: { tier: 'a' },
    });
    const waited = a.wait({ condition: 'next-exit' });
    await a.start();
    await waited;
    const b = await docker.createContainer({ name: 'dk-list-b', Image: 'busybox', Labels: { tier: 'b' } });
    const names = (l: Docker.ContainerInfo[]) => l.map((c) => c.Names[0]).sort();
    assert.deepEqual(names(await docker.listContainers({ all: true, filters: { label: ['tier'] } })), [
      '/dk-list-a',
      '/dk-list-b',
    ]);
    assert.deepEqual(names(await docker.listContainers({ all: true, filters: { label: ['tier=b'] } })), ['/dk-list-b']);
    assert.deepEqual(names(await docker.listContainers({ filters: { status: ['exited'] } })), ['/dk-list-a']);
    assert.deepEqual(names(await docker.listContainers({ all: true, filters: { exited: ['0'] } })), ['/dk-list-a']);
    assert.deepEqual(names(await docker.listContainers({ all: true, filters: { ancestor: ['busybox'] } })), [
      '/dk-list-a',
      '/dk-list-b',
    ]);
    assert.deepEqual(names(await docker.listContainers({ all: true, limit: 1 })), ['/dk-list-b'], 'the newest');
    assert.deepEqual(await docker.listContainers(), [], 'none running');
    const bad = await statusOf(docker.listContainers({ filters: { nosuch: ['x'] } }));
    assert.equal(bad.status, 400);
    assert.match(bad.message, /invalid filter 'nosuch'/);
    type Sized = Docker.ContainerInfo & { SizeRw?: number; SizeRootFs?: number };
    const sized = (
      await docker.listContainers({ all: true, size: true, filters: { name: ['dk-list-a'] } })
    )[0] as Sized;
    assert.ok((sized.SizeRw ?? 0) >= 1048576, `SizeRw ${sized.SizeRw}`);
    assert.ok((sized.SizeRootFs ?? 0) > (sized.SizeRw ?? 0), `SizeRootFs ${sized.SizeRootFs}`);
    const plain = (await docker.listContainers({ all: true, filters: { name: ['dk-list-a'] } }))[0] as Sized;
    assert.equal(plain.SizeRw, undefined, 'sizes only when asked');
    await a.remove();
    await b.remove();
  });

  test("errors: docker's status codes and messages", async () => {
    assert.equal((await statusOf(docker.getContainer('no-such').inspect())).status, 404);
    assert.equal((await statusOf(docker.getContainer('no-such').start())).status, 404);
    assert.equal((await statusOf(docker.createContainer({ Image: 'no-such-image:1' }))).status, 404);
    const c = await docker.createContainer({ name: 'dk-dup', Image: 'busybox', Cmd: ['sleep', '1000'] });
    assert.equal((await statusOf(docker.createContainer({ name: 'dk-dup', Image: 'busybox' }))).status, 409);
    await c.start();
    assert.equal((await statusOf(c.remove())).status, 409, 'removing a running container');
    const bad = await statusOf(docker.createContainer({ name: 'bad/name', Image: 'busybox' }));
    assert.equal(bad.status, 400);
    assert.ok(bad.message.length > 0);
    await c.remove({ force: true });
  });

  test('leaves nothing behind', async () => {
    assert.deepEqual(await docker.listContainers({ all: true }), []);
    daemon.child.kill('SIGTERM');
    assert.equal(await daemon.exited, 0);
    assert.ok(!existsSync(socket));
    await root.cleanupAndCheck();
  });
});
