/**
 * `hull daemon` driven by the real docker CLI (Debian's docker.io 20.10, /usr/bin/docker; /usr/local/bin/docker,
 * a newer CLI, would shadow it on PATH) over DOCKER_HOST=unix://…, against a private root. dockerd is never
 * started. Also: raw requests for the API's error shapes, a client that disconnects mid-stream, SIGTERM (the
 * instances keep running and a new daemon serves them), one daemon per socket.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { type Daemon, startDaemon as startHullDaemon } from './helpers/daemon.js';
import { DIST, HullRoot, waitFor } from './helpers/hull.js';
import { inPty, sq } from './helpers/pty.js';
import { release } from 'node:os';
import { freePort, type RunningRegistry, startDockerRegistry } from './helpers/registry.js';

const DOCKER = '/usr/bin/docker';
const qemu = spawnSync('sh', ['-c', 'command -v qemu-system-x86_64']).status === 0 ? false : 'needs QEMU';
const compose = spawnSync('sh', ['-c', 'command -v docker-compose']).status === 0 ? false : 'needs docker-compose';
const skip = existsSync(DOCKER) ? false : "needs the docker CLI of Debian's docker.io (apt-get install docker.io)";

// VMs share the tests' guest kernel and root disk cache (as test/e2e-vm.test.ts)
const root = new HullRoot('daemon', { HULL_VM_CACHE: process.env.HULL_VM_CACHE ?? '/var/tmp/hull-test-vm-cache' });
const work = mkdtempSync('/tmp/hull-test-daemon-sock-');
const socket = join(work, 'hull.sock');
const startDaemon = (): Promise<Daemon> => startHullDaemon(root, socket);
const dockerConfig = join(work, 'docker-config');

interface ApiResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request on the daemon's socket. */
function api(method: string, path: string, body?: string): Promise<ApiResult> {
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath: socket, method, path, headers: body ? { 'Content-Type': 'application/json' } : {} },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (s: string) => {
          text += s;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

interface DockerResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the docker CLI against the daemon. */
function docker(...args: string[]): Promise<DockerResult> {
  return dockerEnv({}, ...args);
}

/** Run the docker CLI with more environment (DOCKER_HOST over the test socket, TLS settings). */
function dockerEnv(env: Record<string, string>, ...args: string[]): Promise<DockerResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(DOCKER, args, {
      env: { ...process.env, DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: dockerConfig, ...env },
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
  const r = await docker(...args);
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** How many clients are connected to the daemon's socket now (ss(8): the server side of each connection). */
function connections(): number {
  const r = spawnSync('ss', ['-x', '-H', 'src', socket], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => l.includes(socket)).length;
}

/** Stop a daemon with SIGTERM; resolves with its exit code. */
async function stopDaemon(d: Daemon): Promise<number | null> {
  d.child.kill('SIGTERM');
  return d.exited;
}

describe('hull daemon with the docker CLI', { skip }, () => {
  let daemon: Daemon;
  let registry: RunningRegistry;

  before(async () => {
    daemon = await startDaemon();
    registry = await startDockerRegistry();
  });
  after(async () => {
    if (daemon?.child.exitCode === null) await stopDaemon(daemon);
    await registry?.stop();
    await root.dispose();
    rmSync(work, { recursive: true, force: true });
  });

  test("/_ping answers GET and HEAD with docker's headers; the socket is 0660 (group hull) or 0600", async () => {
    for (const method of ['GET', 'HEAD']) {
      const r = await api(method, '/_ping');
      assert.equal(r.status, 200);
      assert.equal(r.headers['api-version'], '1.41');
      assert.equal(r.headers['docker-experimental'], 'false');
      assert.equal(r.headers.ostype, 'linux');
      assert.equal(r.body, method === 'GET' ? 'OK' : '');
    }
    assert.equal((await api('GET', '/v1.41/_ping')).status, 200);
    const mode = statSync(socket).mode & 0o777;
    assert.ok(mode === 0o660 || mode === 0o600, `socket mode ${mode.toString(8)}`);
  });

  test('docker version and docker info', async () => {
    const v = await dockerOk('version');
    assert.match(v, /Server: hull/);
    assert.match(v, /API version:\s+1\.41 \(minimum version/);
    const i = await dockerOk('info');
    assert.match(i, /Server Version: /);
    assert.match(i, /Cgroup Driver: cgroupfs/);
  });

  test('docker run --rm: the output, the exit code passed through, and nothing left', async () => {
    const r = await docker('run', '--rm', 'busybox', 'echo', 'hi');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hi\n');
    const three = await docker('run', '--rm', '--name', 'three', 'busybox', 'sh', '-c', 'echo to-err >&2; exit 3');
    assert.equal(three.code, 3);
    assert.equal(three.stderr, 'to-err\n');
    assert.equal(three.stdout, '');
    assert.equal(await dockerOk('ps', '-a', '-q'), '');
  });

  test('run -d, ps, logs (stdout and stderr framed apart), exec, stop, rm', async () => {
    const id = (
      await dockerOk('run', '-d', '--name', 'web', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exec sleep 1000')
    ).trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    const ps = await dockerOk('ps', '--format', '{{.ID}} {{.Names}} {{.Status}}');
    assert.match(ps, new RegExp(`^${id.slice(0, 12)} web Up `, 'm'));
    await waitFor('both lines in the log', async () => (await docker('logs', 'web')).stderr === 'err\n');
    const logs = await docker('logs', 'web');
    assert.equal(logs.stdout, 'out\n');
    assert.equal(logs.stderr, 'err\n');
    const ts = await docker('logs', '-t', '--tail', '1', 'web');
    assert.match(ts.stdout + ts.stderr, /^\d{4}-\d\d-\d\dT\S+ (out|err)\n$/);

    const ex = await docker('exec', 'web', 'sh', '-c', 'echo in-exec; echo exec-err >&2; exit 4');
    assert.equal(ex.code, 4);
    assert.equal(ex.stdout, 'in-exec\n');
    assert.equal(ex.stderr, 'exec-err\n');
    // docker's status for a command exec cannot start
    assert.equal((await docker('exec', 'web', 'no-such-command')).code, 126);

    const inspect = JSON.parse(await dockerOk('inspect', 'web')) as { Id: string }[];
    assert.equal(inspect[0]!.Id, id);

    await dockerOk('stop', '-t', '1', 'web');
    assert.match(await dockerOk('ps', '-a', '--format', '{{.Names}} {{.Status}}'), /^web Exited \(137\)/m);
    await dockerOk('rm', 'web');
    assert.equal(await dockerOk('ps', '-a', '-q'), '');
  });

  test('start -a, attach, wait, restart, kill -s, top, stats, update, events, prune, network connect', async () => {
    const eventsProc = spawn(DOCKER, ['events', '--format', '{{.Type}} {{.Action}} {{.Actor.Attributes.name}}'], {
      env: { ...process.env, DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: dockerConfig },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let events = '';
    eventsProc.stdout!.setEncoding('utf8').on('data', (s: string) => {
      events += s;
    });
    try {
      const once = await docker('run', '--name', 'again', 'busybox', 'sh', '-c', 'echo run; exit 4');
      assert.equal(once.code, 4);
      // start -a attaches to the next run of an exited instance, and passes its exit code through
      const again = await docker('start', '-a', 'again');
      assert.equal(again.code, 4);
      assert.equal(again.stdout, 'run\n');
      assert.equal(await dockerOk('wait', 'again'), '4\n');

      await dockerOk(
        'run',
        '-d',
        '--name',
        'busy',
        'busybox',
        'sh',
        '-c',
        'trap "echo got-usr1" USR1; while true; do sleep 0.1; done',
      );
      assert.match(await dockerOk('top', 'busy'), /sleep|sh -c/);
      const stats = await dockerOk('stats', '--no-stream', '--format', '{{.Name}} {{.PIDs}}', 'busy');
      assert.match(stats, /^busy [1-9]\d*$/m);
      await dockerOk('update', '--memory', '64m', 'busy');
      const inspect = JSON.parse(await dockerOk('inspect', 'busy')) as { HostConfig: { Memory: number } }[];
      assert.equal(inspect[0]!.HostConfig.Memory, 64 * 1024 * 1024);
      await dockerOk('kill', '-s', 'USR1', 'busy');
      await waitFor('the trap to run', async () => (await dockerOk('logs', 'busy')).includes('got-usr1'));
      await dockerOk('network', 'create', 'side');
      await dockerOk('network', 'connect', 'side', 'busy');
      assert.match(await dockerOk('exec', 'busy', 'ip', '-o', 'link'), /eth1/);
      await dockerOk('network', 'disconnect', 'side', 'busy');
      await dockerOk('restart', '-t', '0', 'busy');
      assert.match(await dockerOk('ps', '--format', '{{.Names}} {{.Status}}'), /^busy Up /m);
      await dockerOk('rm', '-f', 'busy');
      assert.match(await dockerOk('container', 'prune', '-f'), /Deleted Containers:\n[0-9a-f]{64}\n/);
      assert.match(await dockerOk('network', 'prune', '-f'), /side/);
      assert.equal(await dockerOk('ps', '-a', '-q'), '');
      await waitFor('the events', () => /container destroy busy/.test(events));
      for (const line of [
        'container create again',
        'container start again',
        'container die again',
        'container kill busy',
      ])
        assert.match(events, new RegExp(`^${line}$`, 'm'));
    } finally {
      eventsProc.kill('SIGKILL');
    }
  });

  test('load: 10 concurrent creations and 300 inspects through the API, all answered', async () => {
    const created = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        api('POST', `/v1.41/containers/create?name=load-${i}`, JSON.stringify({ Image: 'busybox', Cmd: ['true'] })),
      ),
    );
    for (const r of created) assert.equal(r.status, 201, r.body);
    const ids = created.map((r) => (JSON.parse(r.body) as { Id: string }).Id);
    const inspects = await Promise.all(
      Array.from({ length: 300 }, (_, i) => api('GET', `/v1.41/containers/${ids[i % ids.length]}/json`)),
    );
    for (const r of inspects) assert.equal(r.status, 200);
    const listed = await dockerOk('ps', '-a', '--format', '{{.Names}}', '--filter', 'name=load-');
    assert.equal(listed.split('\n').filter(Boolean).length, 10);
    await dockerOk('rm', ...ids);
  });

  test('docker exec -it and run -it: a terminal, its size, the exit code', async () => {
    await dockerOk('run', '-d', '--name', 'term', 'busybox', 'sleep', '1000');
    const env = { ...process.env, DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: dockerConfig };
    // docker 20.10 sends the size just after the exec starts: the command waits for that resize to arrive
    const waitSize = 'i=0; while [ "$(stty size)" != "45 123" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done';
    const ex = await inPty(`${DOCKER} exec -it term sh -c ${sq(`tty; ${waitSize}; stty size; exit 6`)}`, {
      rows: 45,
      cols: 123,
      env,
    });
    assert.equal(ex.code, 6, ex.output);
    assert.match(ex.output, /\/dev\/pts\/\d+/);
    assert.match(ex.output, /45 123/);
    // docker 20.10 sizes a run's terminal after the start (API 1.41 has no ConsoleSize): only the tty is checked
    const run = await inPty(`${DOCKER} run -it --rm busybox sh -c ${sq('tty; exit 7')}`, { env });
    assert.equal(run.code, 7, run.output);
    assert.match(run.output, /\/dev\/pts\/\d+/);
    await dockerOk('rm', '-f', 'term');
  });

  test('docker run --isolation vm: a VM with its own kernel, the exit code passed through', {
    skip: qemu,
  }, async () => {
    const r = await docker('run', '--rm', '--isolation', 'vm', 'busybox', 'sh', '-c', 'uname -r; exit 5');
    assert.equal(r.code, 5, r.stderr);
    assert.notEqual(r.stdout.trim(), release(), 'the guest runs its own kernel');
    assert.match(r.stdout, /^\d+\.\d+/);
    assert.equal(await dockerOk('ps', '-a', '-q'), '');
  });

  test('docker-compose 1.29: a two-service stack up, names, DNS between services, ps, logs, down -v leaves nothing', {
    skip: compose,
  }, async () => {
    const dir = join(work, 'stack');
    mkdirSync(dir);
    writeFileSync(
      join(dir, 'docker-compose.yml'),
      [
        'version: "3.8"',
        'services:',
        '  db:',
        '    image: busybox',
        '    command: sh -c "mkdir -p /www && echo db-page > /www/index.html && exec httpd -f -p 8080 -h /www"',
        '  web:',
        '    image: busybox',
        '    command: sh -c "until wget -q -O - http://db:8080/ ; do sleep 0.2; done; exec sleep 1000"',
        '    depends_on: [db]',
        '',
      ].join('\n'),
    );
    const composeCmd = (...args: string[]) =>
      new Promise<DockerResult>((resolve) => {
        const child = spawn('docker-compose', ['--project-name', 'stack', ...args], {
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
    const ps = await composeCmd('ps');
    assert.match(ps.stdout, /^stack_db_1 .* Up/m);
    assert.match(ps.stdout, /^stack_web_1 .* Up/m);
    assert.equal(ps.stdout.match(/^stack_/gm)?.length, 2, ps.stdout);
    // web reaches db by its service name on the project's network
    await waitFor(
      "web to fetch db's page",
      async () => (await docker('logs', 'stack_web_1')).stdout.includes('db-page'),
      30_000,
    );
    assert.match(await dockerOk('network', 'ls', '--format', '{{.Name}}'), /^stack_default$/m);
    const logs = await composeCmd('logs', '--no-color', 'web');
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /^web_1 +\| db-page$/m);
    const down = await composeCmd('down', '-v', '-t', '1');
    assert.equal(down.code, 0, down.stderr);
    assert.equal(await dockerOk('ps', '-a', '-q'), '');
    assert.doesNotMatch(await dockerOk('network', 'ls', '--format', '{{.Name}}'), /stack_default/);
  });

  test('docker pull from a registry (JSON progress stream), images, run the pulled image, rmi', async () => {
    await root.ok('push', 'busybox', `${registry.host}/test/bb:1`);
    const ref = `${registry.host}/test/bb:1`;
    const p = await dockerOk('pull', ref);
    assert.match(p, /Status: Downloaded newer image for /);
    assert.match(await dockerOk('images', '--format', '{{.Repository}}:{{.Tag}}'), new RegExp(`^${ref}$`, 'm'));
    assert.equal(await dockerOk('run', '--rm', ref, 'echo', 'pulled'), 'pulled\n');
    await dockerOk('rmi', ref);
    assert.doesNotMatch(await dockerOk('images', '--format', '{{.Repository}}:{{.Tag}}'), new RegExp(ref));
  });

  test('docker network create, ls, rm', async () => {
    await dockerOk('network', 'create', 'dmn-net');
    assert.match(await dockerOk('network', 'ls', '--format', '{{.Name}} {{.Driver}}'), /^dmn-net bridge$/m);
    await dockerOk('network', 'rm', 'dmn-net');
    assert.doesNotMatch(await dockerOk('network', 'ls'), /dmn-net/);
  });

  test("errors: docker's messages and status codes, one log line each", async () => {
    const rm = await docker('rm', 'no-such-ctr');
    assert.equal(rm.code, 1);
    assert.equal(rm.stderr.trim(), 'Error: No such container: no-such-ctr');
    const logs = await docker('logs', 'no-such-ctr');
    assert.equal(logs.code, 1);
    assert.match(logs.stderr, /No such container: no-such-ctr/);

    const bad = await api('POST', '/v1.41/containers/create', '{"Image": "busybox", ');
    assert.equal(bad.status, 400);
    assert.match((JSON.parse(bad.body) as { message: string }).message, /malformed JSON/);
    const wrongType = await api('POST', '/containers/create', '{"Image": "busybox", "Cmd": 5}');
    assert.equal(wrongType.status, 400);
    assert.match((JSON.parse(wrongType.body) as { message: string }).message, /Cmd/);
    const noImage = await api('POST', '/containers/create', '{"Image": "no-such-image:1"}');
    assert.equal(noImage.status, 404);
    assert.equal((JSON.parse(noImage.body) as { message: string }).message, 'No such image: no-such-image:1');
    const nothing = await api('GET', '/v1.41/no/such/path');
    assert.equal(nothing.status, 404);
    assert.ok((JSON.parse(nothing.body) as { message: string }).message);
    // nothing half-made
    assert.equal(await dockerOk('ps', '-a', '-q'), '');
    assert.match(daemon.log(), /POST \/v1\.41\/containers\/create: 400 malformed JSON/);
  });

  test('a client that disconnects mid-stream leaves the daemon serving', async () => {
    await dockerOk('run', '-d', '--name', 'chatty', 'busybox', 'sh', '-c', 'while true; do echo tick; sleep 0.2; done');
    // a raw follow of the logs, cut after the first frame
    await new Promise<void>((resolve, reject) => {
      const req = request(
        { socketPath: socket, path: '/v1.41/containers/chatty/logs?follow=1&stdout=1&stderr=1' },
        (res) => {
          res.once('data', (b: Buffer) => {
            assert.equal(b[0], 1, 'a stdout frame');
            req.destroy();
            resolve();
          });
        },
      );
      req.on('error', (e) => (req.destroyed ? undefined : reject(e)));
      req.end();
    });
    // the docker CLI itself, killed while it follows
    const child = spawn(DOCKER, ['logs', '-f', 'chatty'], {
      env: { ...process.env, DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: dockerConfig },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('close', r));
    assert.match(await dockerOk('version'), /Server: hull/);
    assert.match(await dockerOk('ps', '--format', '{{.Names}}'), /^chatty$/m);
    await dockerOk('rm', '-f', 'chatty');
  });

  test('SIGTERM stops the daemon and leaves instances running; a new daemon serves them', async () => {
    const id = (await dockerOk('run', '-d', '--name', 'survivor', 'busybox', 'sleep', '1000')).trim();
    // one daemon per socket: a second one refuses, naming the first
    const second = await root.hull('daemon', '--socket', socket);
    assert.equal(second.code, 1);
    assert.match(second.stderr, /another hull daemon \(pid \d+\) serves/);

    assert.equal(await stopDaemon(daemon), 0);
    assert.equal(existsSync(socket), false, 'the socket is removed');
    assert.equal((await root.inspect(id)).State.Status, 'running');

    daemon = await startDaemon();
    assert.match(await dockerOk('ps', '--format', '{{.Names}} {{.Status}}'), /^survivor Up /m);
    // a daemon killed with -9 in the middle of requests (a followed log, a wait) leaves a stale socket and pid
    // file: the next one replaces them, and the instance is still running and manageable
    const follower = spawn(DOCKER, ['logs', '-f', 'survivor'], {
      env: { ...process.env, DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: dockerConfig },
      stdio: 'ignore',
    });
    const waiting = docker('wait', 'survivor');
    await waitFor('both clients to be connected', () => connections() >= 2);
    daemon.child.kill('SIGKILL');
    await daemon.exited;
    assert.notEqual((await waiting).code, 0, 'the wait was cut');
    await new Promise((r) => (follower.exitCode !== null ? r(null) : follower.once('close', r)));
    assert.ok(existsSync(socket));
    daemon = await startDaemon();
    assert.match(await dockerOk('ps', '--format', '{{.Names}}'), /^survivor$/m);
    assert.equal((await root.inspect(id)).State.Status, 'running');
    await dockerOk('stop', '-t', '0', 'survivor');
    assert.match(await dockerOk('ps', '-a', '--format', '{{.Names}} {{.Status}}'), /^survivor Exited \(137\)/m);
    await dockerOk('rm', 'survivor');
  });

  test('TCP options without --listen, or half a TLS pair, are refused', async () => {
    const r = await root.hull('daemon', '--socket', join(work, 'other.sock'), '--token-file', '/dev/null');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /apply to --listen/);
    const half = await root.hull(
      'daemon',
      '--socket',
      join(work, 'other.sock'),
      '--listen',
      '127.0.0.1:0',
      '--tls-cert',
      '/dev/null',
    );
    assert.equal(half.code, 1);
    assert.match(half.stderr, /--tls-cert and --tls-key go together/);
  });

  test('TCP (HTTPS, self-signed) with a bearer token: 401 without it, served with it', async () => {
    const tokenFile = join(work, 'token');
    writeFileSync(tokenFile, 'a-test-token-of-some-length\n', { mode: 0o600 });
    const port = await freePort();
    const other = spawn(
      process.execPath,
      [
        '--',
        DIST,
        '--root',
        root.dir,
        'daemon',
        '--socket',
        join(work, 'tcp.sock'),
        '--listen',
        `127.0.0.1:${port}`,
        '--token-file',
        tokenFile,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let log = '';
    other.stderr!.setEncoding('utf8').on('data', (s: string) => {
      log += s;
    });
    const exited = new Promise<number | null>((r) => other.once('exit', (code) => r(code)));
    // HTTPS with the certificate the daemon made on first start (under the root)
    const get = (headers: Record<string, string>) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpsRequest(
          {
            host: '127.0.0.1',
            port,
            path: '/v1.41/containers/json',
            headers,
            ca: readFileSync(join(root.dir, 'daemon', 'tls', 'cert.pem')),
          },
          (res) => {
            let body = '';
            res.setEncoding('utf8').on('data', (d: string) => {
              body += d;
            });
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        req.on('error', reject);
        req.end();
      });
    try {
      await waitFor(`the TCP listener (${log})`, async () => (await get({}).catch(() => null)) !== null, 20_000, 50);
      const anon = await get({});
      assert.equal(anon.status, 401);
      assert.match((JSON.parse(anon.body) as { message: string }).message, /unauthorized/);
      assert.equal((await get({ Authorization: 'Bearer wrong-token-of-some-length' })).status, 401);
      const ok = await get({ Authorization: 'Bearer a-test-token-of-some-length' });
      assert.equal(ok.status, 200, ok.body);
      assert.deepEqual(JSON.parse(ok.body), []);
    } finally {
      other.kill('SIGTERM');
      assert.equal(await exited, 0);
    }
  });

  test('TCP with TLS client certificates: the docker CLI with its certificate is served, without one refused', async () => {
    const dir = join(work, 'tls');
    mkdirSync(dir);
    const ssl = (...args: string[]) => {
      const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
      assert.equal(r.status, 0, `openssl ${args.join(' ')}: ${r.stderr}`);
    };
    ssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=hull-test-ca',
      '-keyout',
      'ca-key.pem',
      '-out',
      'ca.pem',
    );
    for (const [name, ext] of [
      ['server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth'],
      ['client', 'extendedKeyUsage=clientAuth'],
    ] as const) {
      writeFileSync(join(dir, `${name}.ext`), `${ext}\n`);
      ssl(
        'req',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-subj',
        `/CN=${name}`,
        '-keyout',
        `${name}-key.pem`,
        '-out',
        `${name}.csr`,
      );
      ssl(
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca-key.pem',
        '-CAcreateserial',
        '-days',
        '1',
        '-extfile',
        `${name}.ext`,
        '-out',
        `${name}.pem`,
      );
    }
    // the layout DOCKER_CERT_PATH wants
    const certs = join(dir, 'client-certs');
    mkdirSync(certs);
    copyFileSync(join(dir, 'ca.pem'), join(certs, 'ca.pem'));
    copyFileSync(join(dir, 'client.pem'), join(certs, 'cert.pem'));
    copyFileSync(join(dir, 'client-key.pem'), join(certs, 'key.pem'));
    const port = await freePort();
    const other = spawn(
      process.execPath,
      [
        '--',
        DIST,
        '--root',
        root.dir,
        'daemon',
        '--socket',
        join(work, 'tls.sock'),
        '--listen',
        `127.0.0.1:${port}`,
        '--tls-cert',
        join(dir, 'server.pem'),
        '--tls-key',
        join(dir, 'server-key.pem'),
        '--tls-ca',
        join(dir, 'ca.pem'),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let log = '';
    other.stderr!.setEncoding('utf8').on('data', (s: string) => {
      log += s;
    });
    const exited = new Promise<number | null>((r) => other.once('exit', (code) => r(code)));
    try {
      await waitFor(`the TLS listener (${log})`, () => /listening on 127\.0\.0\.1:/.test(log), 20_000, 50);
      const withCert = await dockerEnv(
        { DOCKER_HOST: `tcp://127.0.0.1:${port}`, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certs },
        'version',
      );
      assert.equal(withCert.code, 0, withCert.stderr);
      assert.match(withCert.stdout, /Server: hull/);
      // the server's certificate trusted, but no client certificate: the handshake is refused
      const noCert = await new Promise<string>((resolve) => {
        const req = httpsRequest(
          { host: '127.0.0.1', port, path: '/_ping', ca: readFileSync(join(dir, 'ca.pem')) },
          (res) => {
            res.resume();
            resolve(`served ${res.statusCode}`);
          },
        );
        req.on('error', (e) => resolve(`refused: ${e.message}`));
        req.end();
      });
      assert.match(noCert, /^refused/);
    } finally {
      other.kill('SIGTERM');
      assert.equal(await exited, 0);
    }
  });

  test('leaves nothing behind: the daemon is gone, and so is every instance', async () => {
    assert.equal(await stopDaemon(daemon), 0);
    assert.equal(existsSync(socket), false);
    await root.cleanupAndCheck();
  });
});
