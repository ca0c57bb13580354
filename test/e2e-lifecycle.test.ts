/**
 * End to end, through the real CLI, runtime, cgroups and mounts: the life of a container.
 * `run` in the foreground, then one long-running web server taken through every verb.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { DIST, HullRoot, idsIn, jsonLines, TEST_NETWORK, waitFor } from './helpers/hull.js';
import { cpuQuota, freezerState, memoryLimit } from './helpers/cgroup.js';

const root = new HullRoot('lifecycle');
after(() => root.dispose());

/**
 * Give the root an image `name` that is `from` with config.StopSignal set: new config and manifest blobs in the
 * OCI image layout (<root>/images) and a name for them in its index, as an image copied in by any OCI tool would be.
 */
function addImageWithStopSignal(from: string, name: string, signal: string): void {
  const images = join(root.dir, 'images');
  const blob = (digest: string) =>
    readFileSync(join(images, 'blobs', 'sha256', digest.slice('sha256:'.length)), 'utf8');
  const put = (value: unknown) => {
    const text = JSON.stringify(value);
    const hex = createHash('sha256').update(text).digest('hex');
    writeFileSync(join(images, 'blobs', 'sha256', hex), text);
    return { digest: `sha256:${hex}`, size: Buffer.byteLength(text) };
  };
  const index = JSON.parse(readFileSync(join(images, 'index.json'), 'utf8')) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  const src = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === from);
  assert.ok(src, `no image ${from} in ${JSON.stringify(index)}`);
  const manifest = JSON.parse(blob(src.digest)) as { config: { digest: string; size: number } };
  const config = JSON.parse(blob(manifest.config.digest)) as { config?: Record<string, unknown> };
  config.config = { ...(config.config ?? {}), StopSignal: signal };
  const cfg = put(config);
  const m = put({ ...manifest, config: { ...manifest.config, ...cfg } });
  index.manifests.push({ ...src, ...m, annotations: { 'org.opencontainers.image.ref.name': name } });
  writeFileSync(join(images, 'index.json'), JSON.stringify(index, null, 2));
}

describe('run in the foreground', () => {
  test("run --rm prints the output, exits with the command's status and leaves no instance", async () => {
    const r = await root.hull('run', '--rm', 'busybox', 'sh', '-c', 'echo hello; echo oops >&2; exit 3');
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stdout, 'hello\n');
    assert.equal(r.stderr, 'oops\n', "the container's stderr goes to hull's stderr");
    assert.deepEqual(await root.ids(), []);
  });

  test('run without --rm keeps the exited instance with its code', async () => {
    const r = await root.hull('run', '--name', 'once', 'busybox', 'sh', '-c', 'exit 4');
    assert.equal(r.code, 4);
    const i = await root.inspect('once');
    assert.equal(i.State.Status, 'exited');
    assert.equal(i.State.ExitCode, 4);
    const ps = await root.ok('ps', '-a');
    assert.match(ps, /once/);
    assert.match(ps, /Exited \(4\)/);
    assert.equal(await root.ok('rm', 'once'), 'once\n');
  });
});

describe('run in the foreground, continued', () => {
  test("signals to the foreground hull reach the container (docker's sig-proxy)", async () => {
    const child = spawn(
      process.execPath,
      [
        '--',
        DIST,
        '--root',
        root.dir,
        'run',
        '--rm',
        'busybox',
        'sh',
        '-c',
        'trap "echo got-term; exit 9" TERM; echo ready; while true; do sleep 0.05; done',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
    });
    const closed = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    await waitFor('ready', () => out.includes('ready'), 10_000, 20);
    child.kill('SIGTERM');
    assert.equal(await closed, 9);
    assert.equal(out, 'ready\ngot-term\n');
    await waitFor('the --rm removal', async () => (await root.ids()).length === 0, 5000);
  });

  test('run -d --rm: removed once it exits', async () => {
    const id = (await root.ok('run', '-d', '--rm', 'busybox', 'sh', '-c', 'sleep 0.2')).trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    await waitFor("the removal by conmon's exit command", async () => !(await root.ids()).includes(id), 10_000, 100);
  });

  test('create, then start -a; wait for a created instance waits for its start and exit', async () => {
    await root.ok('create', '--name', 'later', 'busybox', 'sh', '-c', 'echo started-later; exit 6');
    assert.equal((await root.inspect('later')).State.Status, 'created');
    // HULL_TRACE says when wait has seen the created instance and waits for its start
    const waiter = spawn(process.execPath, ['--', DIST, '--root', root.dir, 'wait', 'later'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HULL_TRACE: '1' },
    });
    let waited = '';
    let traced = '';
    waiter.stdout.setEncoding('utf8').on('data', (s: string) => {
      waited += s;
    });
    waiter.stderr.setEncoding('utf8').on('data', (s: string) => {
      traced += s;
    });
    const waiterClosed = new Promise<number | null>((r) => waiter.on('close', (c) => r(c)));
    await waitFor('wait to wait for the start', () => traced.includes('wait: waiting for the start'), 15_000, 20);
    const r = await root.hull('start', '-a', 'later');
    assert.equal(r.code, 6);
    assert.equal(r.stdout, 'started-later\n');
    assert.equal(await waiterClosed, 0);
    assert.equal(waited, '6\n');
    await root.ok('rm', 'later');
  });
});

describe('a web server through every verb', () => {
  let id = '';

  test('run -d --name web --memory 64m --cpus 0.5 busybox httpd', async () => {
    const out = await root.ok(
      'run',
      '-d',
      '--name',
      'web',
      ...TEST_NETWORK,
      '--memory',
      '64m',
      '--cpus',
      '0.5',
      'busybox',
      'httpd',
      '-f',
      '-p',
      '8080',
    );
    assert.match(out, /^[0-9a-f]{64}\n$/);
    id = out.trim();
  });

  test('ps lists it (table, json, -a, -q)', async () => {
    const table = await root.ok('ps');
    assert.match(table, /^INSTANCE ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS/);
    assert.match(
      table,
      new RegExp(`${id.slice(0, 12)}\\s+busybox\\s+"httpd -f -p 8080"\\s+.*Up .*\\s+container\\s+web`),
    );
    const json = jsonLines<{ ID: string; Names: string; State: string; Command: string }>(
      await root.ok('ps', '--no-trunc', '--format', 'json'),
    );
    assert.equal(json.length, 1);
    assert.deepEqual(
      { id: json[0]!.ID, name: json[0]!.Names, state: json[0]!.State, command: json[0]!.Command },
      { id, name: 'web', state: 'running', command: '"httpd -f -p 8080"' },
    );
    assert.equal(await root.ok('ps', '-q'), id.slice(0, 12) + '\n');
    assert.equal(await root.ok('ps', '-q', '--no-trunc'), id + '\n');
    assert.match(await root.ok('ps', '-a'), /web/);
  });

  test("exec reaches the server over the container's loopback", async () => {
    await root.ok('exec', 'web', 'sh', '-c', 'mkdir -p /var/www && echo served-by-hull > /var/www/index.html');
    // httpd serves its working directory (/)
    const r = await root.hull('exec', 'web', 'wget', '-qO-', 'http://127.0.0.1:8080/var/www/index.html');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'served-by-hull\n');
    const missing = await root.hull('exec', 'web', 'wget', '-qO-', 'http://127.0.0.1:8080/nothing-here');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /404/);
  });

  test('exec passes the exit status, -e, -w and -u', async () => {
    assert.equal((await root.hull('exec', 'web', 'sh', '-c', 'exit 9')).code, 9);
    assert.equal(
      await root.ok('exec', '-e', 'X=42', '-w', '/tmp', '-u', 'nobody', 'web', 'sh', '-c', 'echo $X $(pwd) $(id -un)'),
      '42 /tmp nobody\n',
    );
  });

  test('the cgroup has the limits: memory 64 MiB, cpu quota 50000 per 100000', () => {
    assert.equal(memoryLimit(id), 64 * 1024 * 1024);
    assert.deepEqual(cpuQuota(id), { quota: 50000, period: 100000 });
  });

  test('stats --no-stream (table and json)', async () => {
    const table = await root.ok('stats', '--no-stream');
    assert.match(table, /^INSTANCE ID\s+NAME\s+CPU %\s+MEM USAGE \/ LIMIT\s+MEM %\s+NET I\/O\s+BLOCK I\/O\s+PIDS\n/);
    // docker's units: binary for memory (%.4g), decimal for I/O (%.3g)
    assert.match(table, /web\s+\d+\.\d\d%\s+[\d.]+[KMG]?i?B \/ 64MiB\s+\d+\.\d\d%\s+[\d.]+[kMG]?B \/ [\d.]+[kMG]?B\s+/);
    const json = jsonLines<Record<string, string>>(await root.ok('stats', '--no-stream', '--format', 'json', 'web'));
    assert.equal(json.length, 1);
    assert.equal(json[0]!.Name, 'web');
    assert.equal(json[0]!.Container, 'web');
    assert.match(json[0]!.MemUsage!, /^[\d.]+[KMG]?i?B \/ 64MiB$/);
    assert.doesNotMatch(json[0]!.MemUsage!, /^0B/);
    assert.ok(Number(json[0]!.PIDs) >= 1);
  });

  test('update --memory 128m changes the live cgroup and inspect', async () => {
    assert.equal(await root.ok('update', '--memory', '128m', 'web'), 'web\n');
    assert.equal(memoryLimit(id), 128 * 1024 * 1024);
    assert.equal((await root.inspect('web')).HostConfig.Memory, 128 * 1024 * 1024);
    await root.ok('update', '--cpus', '1', 'web');
    assert.equal(cpuQuota(id).quota, 100000);
  });

  test('top lists the server process (ps -ef, as docker), and takes ps options', async () => {
    const out = await root.ok('top', 'web');
    assert.match(out, /^UID\s+PID\s+PPID\s+C\s+STIME\s+TTY\s+TIME\s+CMD\n/);
    assert.match(out, /httpd -f -p 8080/);
    assert.equal(out.trim().split('\n').length, 2, "only the container's process");
    assert.match(await root.ok('top', 'web', '-o', 'pid,comm'), /^\s*PID\s+COMMAND\n\s*\d+\s+httpd\n$/);
    const aux = await root.ok('top', 'web', 'aux');
    assert.match(aux, /^USER\s+PID\s+%CPU\s+%MEM/);
    assert.equal(aux.trim().split('\n').length, 2);
    // ps refuses -q with a forest listing: docker's fallback (all processes, filtered)
    assert.match(await root.ok('top', 'web', 'axf'), /httpd -f -p 8080/);
    const bad = await root.hull('top', 'web', '-o', 'comm');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /no PID column/);
  });

  test('inspect shows the configuration and state', async () => {
    const i = await root.inspect('web');
    assert.equal(i.Id, id);
    assert.equal(i.Name, '/web');
    assert.equal(i.State.Status, 'running');
    assert.equal(i.State.Running, true);
    assert.ok(i.State.Pid > 0);
    assert.ok(i.Hull.SupervisorPid > 0);
    assert.deepEqual(i.Config.Cmd, ['httpd', '-f', '-p', '8080']);
    assert.equal(i.HostConfig.NanoCpus, 1e9);
    assert.equal((await root.inspect(id.slice(0, 8))).Id, id, 'an id prefix works as a reference');
  });

  test('pause freezes the cgroup, unpause thaws it', async () => {
    assert.equal(await root.ok('pause', 'web'), 'web\n');
    assert.equal(freezerState(id), 'FROZEN');
    assert.match(await root.ok('ps'), /\(Paused\)/);
    assert.equal((await root.inspect('web')).State.Paused, true);
    const ex = await root.hull('exec', 'web', 'true');
    assert.equal(ex.code, 1);
    assert.match(ex.stderr, /^hull: .*paused.*\n$/);
    assert.equal(await root.ok('unpause', 'web'), 'web\n');
    assert.equal(freezerState(id), 'THAWED');
    assert.equal((await root.inspect('web')).State.Status, 'running');
  });

  test('logs --tail, --timestamps and -f (which ends when the container stops)', async () => {
    await root.ok(
      'run',
      '-d',
      '--name',
      'talker',
      'busybox',
      'sh',
      '-c',
      'for i in 1 2 3 4 5; do echo line$i; done; echo to-stderr >&2; while [ ! -e /stop ]; do sleep 0.05; done; echo last',
    );
    await waitFor('the first lines', async () => (await root.ok('logs', 'talker')).includes('line5'));
    const all = await root.hull('logs', 'talker');
    assert.equal(all.stdout, 'line1\nline2\nline3\nline4\nline5\n');
    assert.equal(all.stderr, 'to-stderr\n');
    assert.equal(
      await root.ok('logs', '--tail', '2', 'talker'),
      'line5\n',
      'the last two lines: line5 (stdout) and to-stderr',
    );
    const ts2 = await root.ok('logs', '--timestamps', 'talker');
    // docker's fixed RFC 3339 with nanoseconds, UTC
    assert.match(ts2, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z line1\n/);
    // follow: a background reader that must end by itself once the container exits
    const follower = spawn(process.execPath, ['--', DIST, '--root', root.dir, 'logs', '-f', 'talker'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let followed = '';
    follower.stdout.setEncoding('utf8').on('data', (s: string) => {
      followed += s;
    });
    const followerClosed = new Promise<number | null>((r) => follower.on('close', (c) => r(c)));
    await waitFor('logs -f to print what is there', () => followed.includes('line5\n'), 15_000, 20);
    await root.ok('exec', 'talker', 'touch', '/stop');
    assert.equal(await followerClosed, 0);
    assert.equal(followed, 'line1\nline2\nline3\nline4\nline5\nlast\n');
    assert.equal((await root.inspect('talker')).State.Status, 'exited');
    await root.ok('rm', 'talker');
  });

  test('logs to a slow reader: nothing is lost', async () => {
    await root.ok('run', '--name', 'chatty', 'busybox', 'seq', '1', '20000');
    const child = spawn(process.execPath, ['--', DIST, '--root', root.dir, 'logs', 'chatty'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
    });
    child.stdout.pause(); // the reader dawdles: our buffer fills, then the pipe, and hull has to wait
    await waitFor(
      "the reader's buffer to fill",
      () => child.stdout.readableLength >= child.stdout.readableHighWaterMark,
      15_000,
      20,
    );
    child.stdout.resume();
    const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    assert.equal(code, 0);
    const lines = out.split('\n').filter(Boolean);
    assert.equal(lines.length, 20000);
    assert.equal(lines.at(-1), '20000');
    // and a reader that goes away early ends hull quietly
    const head = spawnSync('sh', ['-c', `${process.execPath} -- ${DIST} --root ${root.dir} logs chatty | head -1`], {
      encoding: 'utf8',
    });
    assert.equal(head.stdout, '1\n');
    assert.equal(head.stderr, '');
    await root.ok('rm', 'chatty');
  });

  test('kill -s USR1 reaches a trap in the container', async () => {
    await root.ok(
      'run',
      '-d',
      '--name',
      'sig',
      'busybox',
      'sh',
      '-c',
      'trap "echo got-usr1" USR1; echo ready; while true; do sleep 0.05; done',
    );
    await waitFor('the trap', async () => (await root.ok('logs', 'sig')).includes('ready'));
    assert.equal(await root.ok('kill', '-s', 'USR1', 'sig'), 'sig\n');
    await waitFor('got-usr1 in the log', async () => (await root.ok('logs', 'sig')).includes('got-usr1'), 5000);
    assert.equal((await root.inspect('sig')).State.Status, 'running');
    await root.ok('kill', 'sig'); // SIGKILL by default
    assert.equal(await root.ok('wait', 'sig'), '137\n');
    await root.ok('rm', 'sig');
  });

  test('stop sends SIGTERM and a container that honours it exits at once', async () => {
    await root.ok(
      'run',
      '-d',
      '--name',
      'polite',
      'busybox',
      'sh',
      '-c',
      'trap "echo got-term; exit 7" TERM; echo ready; while true; do sleep 0.05; done',
    );
    await waitFor('the trap', async () => (await root.ok('logs', 'polite')).includes('ready'));
    const r = await root.hull('stop', 'polite');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.ms < 5000, `stop took ${r.ms} ms`);
    const i = await root.inspect('polite');
    assert.equal(i.State.Status, 'exited');
    assert.equal(i.State.ExitCode, 7);
    assert.match(await root.ok('logs', 'polite'), /got-term/);
    await root.ok('rm', 'polite');
  });

  test('stop -t 1 kills a container that ignores SIGTERM after a second', async () => {
    await root.ok('run', '-d', '--name', 'stubborn', 'busybox', 'sh', '-c', "trap '' TERM; echo ready; sleep 100");
    await waitFor('the trap', async () => (await root.ok('logs', 'stubborn')).includes('ready'));
    const r = await root.hull('stop', '-t', '1', 'stubborn');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.ms >= 900 && r.ms < 6000, `stop -t 1 took ${r.ms} ms`);
    const i = await root.inspect('stubborn');
    assert.equal(i.State.ExitCode, 137);
    assert.match(i.State.Error, /SIGKILL|signal 9/);
    await root.ok('rm', 'stubborn');
  });

  test("--stop-signal and the image's StopSignal pick the signal stop sends", async () => {
    await root.ok(
      'run',
      '-d',
      '--name',
      'usr2',
      '--stop-signal',
      'USR2',
      'busybox',
      'sh',
      '-c',
      'trap "echo got-usr2; exit 5" USR2; echo ready; while true; do sleep 0.05; done',
    );
    await waitFor('the trap', async () => (await root.ok('logs', 'usr2')).includes('ready'));
    assert.equal((await root.inspect('usr2')).Config.StopSignal, 'SIGUSR2');
    const r = await root.hull('stop', 'usr2');
    assert.equal(r.code, 0);
    assert.ok(r.ms < 5000, `stop took ${r.ms} ms`);
    assert.equal((await root.inspect('usr2')).State.ExitCode, 5);
    await root.ok('rm', 'usr2');
    addImageWithStopSignal('docker.io/library/busybox:latest', 'docker.io/library/stopper:latest', 'SIGUSR1');
    await root.ok(
      'run',
      '-d',
      '--name',
      'usr1',
      'stopper',
      'sh',
      '-c',
      'trap "echo got-usr1; exit 6" USR1; echo ready; while true; do sleep 0.05; done',
    );
    await waitFor('the trap', async () => (await root.ok('logs', 'usr1')).includes('ready'));
    assert.equal((await root.inspect('usr1')).Config.StopSignal, 'SIGUSR1');
    const r2 = await root.hull('stop', 'usr1');
    assert.equal(r2.code, 0);
    assert.ok(r2.ms < 5000, `stop took ${r2.ms} ms`);
    assert.equal((await root.inspect('usr1')).State.ExitCode, 6);
    await root.ok('rm', 'usr1');
    await root.ok('rmi', 'stopper');
  });

  test('stop, start again, restart', async () => {
    const before = (await root.inspect('web')).State.Pid;
    // httpd is pid 1 without a TERM handler: the kernel ignores SIGTERM for it, so it takes the kill
    const stop = await root.hull('stop', '-t', '1', 'web');
    assert.equal(stop.code, 0, stop.stderr);
    const stopped = await root.inspect('web');
    assert.equal(stopped.State.Status, 'exited');
    assert.equal(stopped.State.ExitCode, 137);
    assert.doesNotMatch(await root.ok('ps'), /web/);
    assert.match(await root.ok('ps', '-a'), /web/);
    assert.equal(await root.ok('start', 'web'), 'web\n');
    const started = await root.inspect('web');
    assert.equal(started.State.Status, 'running');
    assert.notEqual(started.State.Pid, before);
    // the writable layer survives a stop/start: the page is still there
    assert.equal(
      await root.ok('exec', 'web', 'wget', '-qO-', 'http://127.0.0.1:8080/var/www/index.html'),
      'served-by-hull\n',
    );
    // the limits too (the update above)
    assert.equal(memoryLimit(id), 128 * 1024 * 1024);
    assert.equal(await root.ok('restart', '-t', '0', 'web'), 'web\n');
    const restarted = await root.inspect('web');
    assert.equal(restarted.State.Status, 'running');
    assert.notEqual(restarted.State.Pid, started.State.Pid);
  });

  test('wait returns the exit code', async () => {
    await root.ok('run', '-d', '--name', 'waiter', 'busybox', 'sh', '-c', 'sleep 0.3; exit 42');
    const r = await root.hull('wait', 'waiter');
    assert.equal(r.code, 0);
    assert.equal(r.stdout, '42\n');
    assert.equal(await root.ok('wait', 'waiter'), '42\n', 'waiting for an exited one answers at once');
    await root.ok('rm', 'waiter');
  });

  test('rm -f removes the running web server and its cgroups', async () => {
    assert.equal(await root.ok('rm', '-f', 'web'), 'web\n');
    assert.deepEqual(await root.ids(), []);
    const r = await root.hull('inspect', 'web');
    assert.equal(r.code, 1);
    assert.deepEqual(idsIn(await root.ok('ps', '-a', '--no-trunc')), []);
  });
});

test('container prune removes exited and created instances, never running ones', async () => {
  await root.ok('run', '--name', 'prune-exited', 'busybox', 'true');
  await root.ok('create', '--name', 'prune-created', 'busybox', 'true');
  await root.ok('run', '-d', '--name', 'prune-running', 'busybox', 'sleep', '60');
  const r = JSON.parse(await root.ok('container', 'prune', '-f', '--format', 'json')) as { InstancesDeleted: string[] };
  assert.equal(r.InstancesDeleted.length, 2);
  const names = (await root.ok('ps', '-a', '--format', 'json')).includes('prune-running');
  assert.ok(names, 'the running one stays');
  assert.equal((await root.hull('inspect', 'prune-exited')).code, 1);
  await root.ok('rm', '-f', 'prune-running');
});

test('system prune: stopped instances, unused networks, dangling images, build cache; running ones and their networks stay', async () => {
  await root.ok('network', 'create', 'prune-unused', '--subnet', '10.97.1.0/24');
  await root.ok('network', 'create', 'prune-used', '--subnet', '10.97.2.0/24');
  await root.ok('run', '-d', '--name', 'sp-running', '--network', 'prune-used', 'busybox', 'sleep', '60');
  await root.ok('run', '--name', 'sp-exited', '--network', 'none', 'busybox', 'true');
  const r = JSON.parse(await root.ok('system', 'prune', '-f', '--format', 'json')) as {
    InstancesDeleted: string[];
    NetworksDeleted: string[];
  };
  assert.equal(r.InstancesDeleted.length, 1);
  assert.deepEqual(r.NetworksDeleted, ['prune-unused']);
  const nets = await root.ok('network', 'ls', '--format', 'json');
  assert.match(nets, /prune-used/);
  await root.ok('rm', '-f', 'sp-running');
  await root.ok('network', 'rm', 'prune-used');
});

test('leaves nothing behind', () => root.cleanupAndCheck());
