/**
 * `hull daemon` driven by the real docker CLI (Debian's docker.io 20.10, /usr/bin/docker), part two: docker cp
 * (archive GET/HEAD/PUT, hostile archives that must not reach the host), export, the ps Ports column, save and
 * load through the CLI. dockerd is never started. See e2e-daemon.test.ts for the rest.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { type Daemon, startDaemon as startHullDaemon, stopIfRunning } from './helpers/daemon.js';
import { HullRoot, waitFor } from './helpers/hull.js';
import { FaultRegistry, freePort, type RunningRegistry, startDockerRegistry } from './helpers/registry.js';
import { rawTar } from './helpers/tar.js';

const DOCKER = '/usr/bin/docker';
const compose = spawnSync('sh', ['-c', 'command -v docker-compose']).status === 0 ? false : 'needs docker-compose';
const skip = existsSync(DOCKER) ? false : "needs the docker CLI of Debian's docker.io (apt-get install docker.io)";

const qemu = spawnSync('sh', ['-c', 'command -v qemu-system-x86_64']).status === 0 ? false : 'needs QEMU';
// VMs share the tests' guest kernel and root disk cache (as test/e2e-vm.test.ts)
const root = new HullRoot('daemon-more', {
  HULL_VM_CACHE: process.env.HULL_VM_CACHE ?? '/var/tmp/hull-test-vm-cache',
});
const work = mkdtempSync('/tmp/hull-test-daemon-more-');
const socket = join(work, 'hull.sock');
const startDaemon = (): Promise<Daemon> => startHullDaemon(root, socket);
const dockerConfig = join(work, 'docker-config');

interface ApiResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request on the daemon's socket. */
function api(method: string, path: string, body?: Buffer, type = 'application/json'): Promise<ApiResult> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, method, path, headers: body ? { 'Content-Type': type } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (s: string) => {
        text += s;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

interface DockerResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the docker CLI against the daemon (a shell pipeline when `shell`). */
function docker(args: string[], opts: { env?: Record<string, string>; shell?: boolean } = {}): Promise<DockerResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(opts.shell ? 'sh' : DOCKER, opts.shell ? ['-c', args.join(' ')] : args, {
      env: { ...process.env, DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: dockerConfig, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      stdout += s;
    });
    child.stderr!.setEncoding('utf8').on('data', (s: string) => {
      stderr += s;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`docker ${args.join(' ')} did not finish in 120 s\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, 120_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function dockerOk(...args: string[]): Promise<string> {
  const r = await docker(args);
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

describe('hull daemon with the docker CLI: cp, export, ports, save/load', { skip }, () => {
  let daemon: Daemon;
  let registry: RunningRegistry;

  before(async () => {
    daemon = await startDaemon();
    registry = await startDockerRegistry();
  });
  after(async () => {
    await registry?.stop();
    await stopIfRunning(daemon);
    await root.dispose();
    rmSync(work, { recursive: true, force: true });
  });

  test('docker cp both ways: a file, a directory, to stdout; HEAD stat; into and out of stopped containers', async () => {
    await dockerOk('run', '-d', '--name', 'cp1', 'busybox', 'sleep', '1000');
    const src = join(work, 'src');
    mkdirSync(join(src, 'dir', 'sub'), { recursive: true });
    writeFileSync(join(src, 'one.txt'), 'one\n');
    writeFileSync(join(src, 'dir', 'sub', 'two.txt'), 'two\n');
    await dockerOk('cp', join(src, 'one.txt'), 'cp1:/tmp/');
    await dockerOk('cp', join(src, 'dir'), 'cp1:/tmp/dir');
    await dockerOk('cp', join(src, 'one.txt'), 'cp1:/tmp/renamed.txt');
    assert.equal(
      await dockerOk('exec', 'cp1', 'cat', '/tmp/one.txt', '/tmp/dir/sub/two.txt', '/tmp/renamed.txt'),
      'one\ntwo\none\n',
    );

    await dockerOk(
      'exec',
      'cp1',
      'sh',
      '-c',
      'mkdir -p /data/x && echo three > /data/x/three.txt && echo hi > /data/hi',
    );
    const out = join(work, 'out');
    mkdirSync(out);
    await dockerOk('cp', 'cp1:/data', out);
    assert.equal(readFileSync(join(out, 'data', 'x', 'three.txt'), 'utf8'), 'three\n');
    await dockerOk('cp', 'cp1:/data/hi', join(out, 'hi.txt'));
    assert.equal(readFileSync(join(out, 'hi.txt'), 'utf8'), 'hi\n');
    // to stdout: a tar
    const t = await docker(['cp', 'cp1:/data/hi', '-']);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /^hi/);

    const head = await api('HEAD', '/containers/cp1/archive?path=/data');
    assert.equal(head.status, 200);
    const stat = JSON.parse(Buffer.from(String(head.headers['x-docker-container-path-stat']), 'base64').toString());
    assert.equal(stat.name, 'data');
    assert.ok(stat.mode >= 2 ** 31, `a directory's Go mode: ${stat.mode}`);
    assert.equal((await api('HEAD', '/containers/cp1/archive?path=/nope')).status, 404);
    const missing = await docker(['cp', 'cp1:/nope', out]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /No such container:path: cp1:\/nope/);

    // docker diff: what the container changed, added and deleted
    await dockerOk('exec', 'cp1', 'rm', '/bin/vi');
    const diff = await dockerOk('diff', 'cp1');
    assert.match(diff, /^C \/tmp$/m);
    assert.match(diff, /^A \/tmp\/one\.txt$/m);
    assert.match(diff, /^A \/data\/x\/three\.txt$/m);
    assert.match(diff, /^D \/bin\/vi$/m);
    await dockerOk('rm', '-f', 'cp1');
    // a created container (never started) and an exited one: their roots are mounted for the copy, then not
    await dockerOk('create', '--name', 'cp2', 'busybox', 'cat', '/tmp/x.txt', '/tmp/dir/sub/two.txt');
    await dockerOk('cp', join(src, 'one.txt'), 'cp2:/tmp/x.txt');
    await dockerOk('cp', join(src, 'dir'), 'cp2:/tmp/dir');
    assert.equal(await dockerOk('start', '-a', 'cp2'), 'one\ntwo\n');
    const mounts = () =>
      readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .filter((l) => l.includes(root.dir));
    const before = mounts().length;
    writeFileSync(join(src, 'one.txt'), 'changed\n');
    await dockerOk('cp', join(src, 'one.txt'), 'cp2:/tmp/x.txt');
    assert.equal(mounts().length, before, 'no mount left by a copy into an exited container');
    await dockerOk('cp', 'cp2:/tmp/x.txt', join(out, 'back.txt'));
    assert.equal(readFileSync(join(out, 'back.txt'), 'utf8'), 'changed\n');
    assert.equal(await dockerOk('start', '-a', 'cp2'), 'changed\ntwo\n');
    assert.match(await dockerOk('diff', 'cp2'), /^A \/tmp\/x\.txt$/m);
    await dockerOk('rm', 'cp2');
  });

  test('a hostile archive: .. entries, absolute paths, symlinks in the archive and in the container stay inside', async () => {
    const host = mkdtempSync('/tmp/hull-test-cp-host-');
    try {
      await dockerOk('run', '-d', '--name', 'cp3', 'busybox', 'sleep', '1000');
      // links in the container that point at the host directory's path (absolute and climbing)
      await dockerOk(
        'exec',
        'cp3',
        'sh',
        '-c',
        `mkdir -p /in ${host} && ln -s ${host} /in/trap && ln -s ../../../../../..${host} /in/trap2`,
      );
      const tar = rawTar([
        { path: `../../../../../../..${host}/dotdot`, body: 'x' },
        { path: `${host}/absolute`, body: 'x' },
        { path: 'evil', type: 'SymbolicLink', link: host },
        { path: 'evil/through-archive-link', body: 'x' },
        { path: 'trap/through-container-link', body: 'x' },
        { path: 'trap2/through-climbing-link', body: 'x' },
        { path: 'fine.txt', body: 'fine' },
      ]);
      const r = await api('PUT', '/containers/cp3/archive?path=/in', tar, 'application/x-tar');
      assert.equal(r.status, 200, r.body);
      assert.deepEqual(readdirSync(host), [], 'nothing written on the host');
      assert.equal(await dockerOk('exec', 'cp3', 'cat', '/in/fine.txt'), 'fine');
      // what went through a container link landed where the container sees it: inside its own root
      assert.equal(await dockerOk('exec', 'cp3', 'cat', `${host}/through-container-link`), 'x');
      assert.equal(await dockerOk('exec', 'cp3', 'cat', `${host}/through-climbing-link`), 'x');
      // the archive's own link is kept as a link, nothing extracted below it
      assert.equal(await dockerOk('exec', 'cp3', 'readlink', '/in/evil'), `${host}\n`);
      // the GET side does not follow a link out either
      const got = await api('GET', `/containers/cp3/archive?path=/in/trap/`);
      assert.equal(got.status, 200);
      await dockerOk('rm', '-f', 'cp3');
    } finally {
      assert.deepEqual(readdirSync(host), []);
      rmSync(host, { recursive: true, force: true });
    }
  });

  test('a hostile archive into a stopped container: links in its root are followed inside it, never onto the host', async () => {
    const host = mkdtempSync('/tmp/hull-test-cp-host-');
    try {
      await dockerOk(
        'run',
        '--name',
        'cp4',
        'busybox',
        'sh',
        '-c',
        `mkdir -p /in ${host} && ln -s ${host} /in/trap && ln -s ../../../../../..${host} /in/trap2`,
      );
      const tar = rawTar([
        { path: `../../../../../../..${host}/dotdot`, body: 'x' },
        { path: `${host}/absolute`, body: 'x' },
        { path: 'evil', type: 'SymbolicLink', link: host },
        { path: 'evil/through-archive-link', body: 'x' },
        { path: 'trap/through-container-link', body: 'x' },
        { path: 'trap2/through-climbing-link', body: 'x' },
        { path: 'fine.txt', body: 'fine' },
      ]);
      const r = await api('PUT', '/containers/cp4/archive?path=/in', tar, 'application/x-tar');
      assert.equal(r.status, 200, r.body);
      assert.deepEqual(readdirSync(host), [], 'nothing written on the host');
      const fine = await docker(['cp', 'cp4:/in/fine.txt', '-']);
      assert.match(fine.stdout, /fine/);
      const inside = await docker(['cp', `cp4:${host}/through-container-link`, '-']);
      assert.equal(inside.code, 0, inside.stderr);
      // an absolute path for the destination is the container's, a missing one is docker's 404
      assert.equal((await api('PUT', '/containers/cp4/archive?path=/no/such', tar, 'application/x-tar')).status, 404);
      await dockerOk('rm', 'cp4');
    } finally {
      assert.deepEqual(readdirSync(host), []);
      rmSync(host, { recursive: true, force: true });
    }
  });

  test('docker export; docker ps shows published ports', async () => {
    const port = await freePort();
    await dockerOk('run', '-d', '--name', 'ports1', '-p', `127.0.0.1:${port}:80`, 'busybox', 'sleep', '1000');
    const ps = await dockerOk('ps', '--format', '{{.Names}} {{.Ports}}');
    assert.match(ps, new RegExp(`^ports1 127\\.0\\.0\\.1:${port}->80/tcp$`, 'm'));
    const file = join(work, 'export.tar');
    await dockerOk('export', '-o', file, 'ports1');
    const list = spawnSync('tar', ['-tf', file], { encoding: 'utf8' });
    assert.equal(list.status, 0);
    assert.match(list.stdout, /^\.\/bin\/busybox$/m);
    await dockerOk('rm', '-f', 'ports1');
  });

  test('docker push (JSON progress stream) to a registry, then pull it back', async () => {
    const ref = `${registry.host}/more/bb:1`;
    await dockerOk('tag', 'busybox', ref);
    const out = await dockerOk('push', ref);
    assert.match(out, /The push refers to repository/);
    assert.match(out, /1: digest: sha256:[0-9a-f]{64}/);
    await dockerOk('rmi', ref);
    await dockerOk('pull', ref);
    assert.equal(await dockerOk('run', '--rm', ref, 'echo', 'pushed'), 'pushed\n');
    await dockerOk('rmi', ref);
    const bad = await docker(['push', `${registry.host}/more/none:1`]);
    assert.notEqual(bad.code, 0);
  });

  test('X-Registry-Auth: the credentials docker sends are used for that pull only', async () => {
    const reg = new FaultRegistry(true);
    await reg.start();
    try {
      const ref = `${reg.host}/none/img:1`;
      const anonymous = await docker(['pull', ref]);
      assert.notEqual(anonymous.code, 0, 'refused without credentials');
      const cfg = join(work, 'auth-config');
      mkdirSync(cfg, { recursive: true });
      writeFileSync(
        join(cfg, 'config.json'),
        JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from('alice:secret').toString('base64') } } }),
      );
      const r = await docker(['pull', ref], { env: { DOCKER_CONFIG: cfg } });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(!existsSync(join(root.dir, 'auth.json')), 'nothing saved in the root');
      await dockerOk('rmi', ref);
    } finally {
      await reg.stop();
    }
  });

  test('docker save | docker load round trip', async () => {
    await dockerOk('tag', 'busybox', 'saved:1');
    const file = join(work, 'saved.tar');
    await dockerOk('save', '-o', file, 'saved:1');
    const list = spawnSync('tar', ['-tf', file], { encoding: 'utf8' });
    assert.match(list.stdout, /^manifest\.json$/m);
    await dockerOk('rmi', 'saved:1');
    const piped = await docker([DOCKER, 'save', 'busybox', '|', DOCKER, 'load'], { shell: true });
    assert.equal(piped.code, 0, piped.stderr);
    assert.match(piped.stdout, /Loaded image: /);
    const loaded = await dockerOk('load', '-i', file);
    assert.match(loaded, /Loaded image: saved:1/);
    assert.equal(await dockerOk('run', '--rm', 'saved:1', 'echo', 'loaded'), 'loaded\n');
    await dockerOk('rmi', 'saved:1');
  });

  test('docker build (classic builder API): steps streamed, build args, labels, target, -q, errors', async () => {
    const ctx = join(work, 'build');
    mkdirSync(join(ctx, 'sub'), { recursive: true });
    writeFileSync(join(ctx, 'sub', 'data.txt'), 'from the context\n');
    writeFileSync(
      join(ctx, 'Dockerfile'),
      'FROM busybox AS base\nARG GREETING=none\nCOPY sub/data.txt /data.txt\nRUN echo "$GREETING" > /greeting\nFROM base AS final\nCMD ["cat", "/greeting", "/data.txt"]\n',
    );
    const env = { DOCKER_BUILDKIT: '0' };
    const b = await docker(
      ['build', '-t', 'built:1', '--build-arg', 'GREETING=hello', '--label', 'made.by=test', ctx],
      {
        env,
      },
    );
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stdout, /^Step 1\/\d+ : FROM busybox AS base$/m);
    assert.match(b.stdout, /^Successfully built [0-9a-f]{12}$/m);
    assert.match(b.stdout, /^Successfully tagged built:1$/m);
    assert.equal(await dockerOk('run', '--rm', 'built:1'), 'hello\nfrom the context\n');
    assert.equal((await dockerOk('inspect', '-f', '{{index .Config.Labels "made.by"}}', 'built:1')).trim(), 'test');
    const q = await docker(['build', '-q', '--target', 'base', '-t', 'built:base', ctx], { env });
    assert.equal(q.code, 0, q.stderr);
    assert.match(q.stdout.trim(), /^sha256:[0-9a-f]{64}$/);
    writeFileSync(join(ctx, 'Dockerfile.bad'), 'FROM busybox\nRUN exit 7\n');
    const bad = await docker(['build', '-f', join(ctx, 'Dockerfile.bad'), ctx], { env });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr + bad.stdout, /exit|7/);
    await dockerOk('rmi', 'built:1', 'built:base');
  });

  test('volumes: create, ls, inspect, -v NAME:/path shared between containers, in use (409), rm, prune', async () => {
    await dockerOk('volume', 'create', '--label', 'team=a', 'v1');
    assert.match(await dockerOk('volume', 'ls', '--format', '{{.Name}} {{.Driver}}'), /^v1 local$/m);
    const mp = (await dockerOk('volume', 'inspect', '-f', '{{.Mountpoint}} {{.Labels.team}}', 'v1')).trim();
    assert.equal(mp, `${join(root.dir, 'volumes', 'v1', '_data')} a`);
    await dockerOk(
      'run',
      '-d',
      '--name',
      'vol1',
      '-v',
      'v1:/data',
      'busybox',
      'sh',
      '-c',
      'echo shared > /data/f && exec sleep 1000',
    );
    await waitFor('the file in the volume', () => existsSync(join(root.dir, 'volumes', 'v1', '_data', 'f')));
    assert.equal(
      (await dockerOk('inspect', '-f', '{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}}{{end}}', 'vol1')).trim(),
      'volume v1 /data',
    );
    assert.equal(await dockerOk('run', '--rm', '-v', 'v1:/in:ro', 'busybox', 'cat', '/in/f'), 'shared\n');
    // docker system df -v reads each volume's UsageData: one link (vol1), a few bytes
    assert.match(await dockerOk('system', 'df', '-v'), /^v1 +1 +\d+(\.\d+)?k?B$/m);
    const inUse = await docker(['volume', 'rm', 'v1']);
    assert.notEqual(inUse.code, 0);
    assert.match(inUse.stderr, /volume v1 is in use by vol1/);
    // --mount type=volume makes a missing named volume; Mounts through the API too
    await dockerOk('run', '--rm', '--mount', 'type=volume,src=v2,dst=/x', 'busybox', 'sh', '-c', 'echo two > /x/t');
    assert.equal(readFileSync(join(root.dir, 'volumes', 'v2', '_data', 't'), 'utf8'), 'two\n');
    await dockerOk('rm', '-f', 'vol1');
    assert.equal(await dockerOk('volume', 'rm', 'v1'), 'v1\n');
    assert.ok(!existsSync(join(root.dir, 'volumes', 'v1')));
    const pruned = await dockerOk('volume', 'prune', '-f');
    assert.match(pruned, /v2/);
    assert.equal(await dockerOk('volume', 'ls', '-q'), '');
    const missing = await docker(['volume', 'inspect', 'nope']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /no such volume/i);
  });

  test("anonymous volumes: -v /path and the image's VOLUME, removed by rm -v and --rm", async () => {
    await dockerOk(
      'run',
      '-d',
      '--name',
      'anon1',
      '-v',
      '/scratch',
      'busybox',
      'sh',
      '-c',
      'echo a > /scratch/a && exec sleep 1000',
    );
    const names = (await dockerOk('volume', 'ls', '-q')).trim().split('\n');
    assert.equal(names.length, 1);
    assert.match(names[0]!, /^[0-9a-f]{64}$/);
    await dockerOk('rm', '-f', '-v', 'anon1');
    assert.equal(await dockerOk('volume', 'ls', '-q'), '');
    const ctx = join(work, 'volimage');
    mkdirSync(ctx, { recursive: true });
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM busybox\nVOLUME /vol\n');
    const b = await docker(['build', '-q', '-t', 'withvol:1', ctx], { env: { DOCKER_BUILDKIT: '0' } });
    assert.equal(b.code, 0, b.stderr);
    await dockerOk('create', '--name', 'anon2', 'withvol:1', 'true');
    assert.equal((await dockerOk('volume', 'ls', '-q')).trim().split('\n').length, 1);
    await dockerOk('rm', 'anon2');
    // without -v an anonymous volume stays (docker's rule); prune takes it
    assert.equal((await dockerOk('volume', 'ls', '-q')).trim().split('\n').length, 1);
    await dockerOk('volume', 'prune', '-f');
    assert.equal(await dockerOk('run', '--rm', 'withvol:1', 'sh', '-c', 'echo x > /vol/x && cat /vol/x'), 'x\n');
    assert.equal(await dockerOk('volume', 'ls', '-q'), '', '--rm removed the anonymous volume');
    await dockerOk('rmi', 'withvol:1');
  });

  test('a VM gets a named volume over virtiofs; docker cp into a VM is refused with what to do', {
    skip: qemu,
  }, async () => {
    await dockerOk('volume', 'create', 'vmvol');
    const r = await docker([
      'run',
      '--rm',
      '--isolation',
      'vm',
      '-v',
      'vmvol:/d',
      'busybox',
      'sh',
      '-c',
      'echo from-vm > /d/x',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(join(root.dir, 'volumes', 'vmvol', '_data', 'x'), 'utf8'), 'from-vm\n');
    const id = (await dockerOk('create', '--isolation', 'vm', 'busybox', 'true')).trim();
    const cp = await api(
      'PUT',
      `/containers/${id}/archive?path=/tmp`,
      rawTar([{ path: 'a', body: 'a' }]),
      'application/x-tar',
    );
    assert.equal(cp.status, 501);
    assert.match(JSON.parse(cp.body).message, /not supported yet: use a bind mount/);
    await dockerOk('rm', id);
    await dockerOk('volume', 'rm', 'vmvol');
  });

  test("the same volumes from hull's CLI: volume create/ls/inspect/rm/prune, run -v NAME:/path, rm -v", async () => {
    assert.equal(await root.ok('volume', 'create', '--label', 'k=v', 'cliv'), 'cliv\n');
    assert.match(await root.ok('volume', 'ls'), /^local +cliv +default +-$/m);
    assert.equal(
      await root.ok('volume', 'inspect', '-f', '{{.Mountpoint}} {{.Labels.k}}', 'cliv'),
      `${join(root.dir, 'volumes', 'cliv', '_data')} v\n`,
    );
    await root.ok('run', '--rm', '-v', 'cliv:/d', 'busybox', 'sh', '-c', 'echo cli > /d/x');
    assert.equal(await dockerOk('run', '--rm', '-v', 'cliv:/d', 'busybox', 'cat', '/d/x'), 'cli\n');
    await root.ok('create', '--name', 'clianon', '-v', '/anon', '-v', 'cliv:/d', 'busybox', 'true');
    const inUse = await root.hull('volume', 'rm', 'cliv');
    assert.notEqual(inUse.code, 0);
    assert.match(inUse.stderr, /^hull: volume cliv is in use by clianon: remove it first$/m);
    assert.equal((await root.ok('volume', 'ls', '-q')).trim().split('\n').length, 2);
    await root.ok('rm', '-v', 'clianon');
    assert.equal(await root.ok('volume', 'ls', '-q'), 'cliv\n');
    assert.equal(await root.ok('volume', 'prune'), 'cliv\n');
    assert.equal(await root.ok('volume', 'ls', '-q'), '');
  });

  test('docker-compose 1.29: a named volume of the stack, kept by down, removed by down -v', {
    skip: compose,
  }, async () => {
    const dir = join(work, 'stack');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'docker-compose.yml'),
      [
        'version: "3.8"',
        'services:',
        '  app:',
        '    image: busybox',
        '    command: sh -c "date >> /data/runs && exec sleep 1000"',
        '    volumes: [data:/data]',
        'volumes:',
        '  data: {}',
        '',
      ].join('\n'),
    );
    const composeCmd = (...args: string[]) =>
      new Promise<DockerResult>((resolve) => {
        const child = spawn('docker-compose', ['--project-name', 'vstack', ...args], {
          cwd: dir,
          env: { ...process.env, DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: dockerConfig },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout!.setEncoding('utf8').on('data', (x: string) => {
          stdout += x;
        });
        child.stderr!.setEncoding('utf8').on('data', (x: string) => {
          stderr += x;
        });
        child.on('close', (code) => resolve({ code, stdout, stderr }));
      });
    const up = await composeCmd('up', '-d');
    assert.equal(up.code, 0, up.stderr);
    assert.match(await dockerOk('volume', 'ls', '-q'), /^vstack_data$/m);
    const runs = join(root.dir, 'volumes', 'vstack_data', '_data', 'runs');
    await waitFor('the first run recorded', () => existsSync(runs));
    const down = await composeCmd('down', '-t', '1');
    assert.equal(down.code, 0, down.stderr);
    assert.match(await dockerOk('volume', 'ls', '-q'), /^vstack_data$/m);
    const again = await composeCmd('up', '-d');
    assert.equal(again.code, 0, again.stderr);
    await waitFor('the second run recorded', () => readFileSync(runs, 'utf8').split('\n').length === 3);
    const downV = await composeCmd('down', '-v', '-t', '1');
    assert.equal(downV.code, 0, downV.stderr);
    assert.equal(await dockerOk('volume', 'ls', '-q'), '');
    assert.equal(await dockerOk('ps', '-a', '-q'), '');
  });

  test('leaves nothing behind: the daemon is gone, and so is every instance', async () => {
    daemon.child.kill('SIGTERM');
    assert.equal(await daemon.exited, 0);
    await root.cleanupAndCheck();
  });
});
