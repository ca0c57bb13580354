/**
 * End to end through the CLI (docker 20.10's behaviour): --init (tini as pid 1: orphans reaped, signals
 * forwarded), healthchecks (healthy, unhealthy after retries, the start period, the image's HEALTHCHECK from a
 * hull build, --no-healthcheck, events, ps status, `hull healthcheck run`, the per-run monitor process ending
 * with the run), --add-host NAME:host-gateway, -a, --cidfile and --shm-size. State changes are awaited by
 * polling inspect with a deadline.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HullRoot, idsIn, waitFor } from './helpers/hull.js';
import { type Health, health as healthOf, monitors } from './helpers/health.js';

const root = new HullRoot('health');
const tmp = mkdtempSync('/tmp/hull-health-files-');
after(async () => {
  await root.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

const health = (ref: string) => healthOf(root, ref);

/** Poll inspect until the health satisfies `ok` (deadline 20 s). */
function healthUntil(ref: string, what: string, ok: (h: Health) => boolean): Promise<Health> {
  return waitFor(
    `${ref}: ${what}`,
    async () => {
      const h = await health(ref);
      return h && ok(h) ? h : undefined;
    },
    20_000,
    100,
  );
}

/** Process states and command lines in an instance (busybox ps; a zombie's shows as [name]). */
async function processes(name: string): Promise<{ pid: number; stat: string; args: string }[]> {
  const out = await root.ok('exec', name, 'ps', '-o', 'pid,stat,args');
  return out
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => {
      const [pid, stat, ...args] = l.trim().split(/\s+/);
      return { pid: Number(pid), stat: stat!, args: args.join(' ') };
    })
    .filter((p) => !p.args.startsWith('ps '));
}

describe('--init', () => {
  test('tini is pid 1 and runs the command; inspect shows HostConfig.Init', async () => {
    const out = await root.ok('run', '--rm', '--init', 'busybox', 'ps', '-o', 'pid,args');
    assert.match(out, /^\s*1\s+\/sbin\/docker-init -- ps -o pid,args$/m);
    await root.ok('create', '--name', 'init-c', '--init', 'busybox', 'true');
    assert.equal((await root.inspect('init-c')).HostConfig.Init, true);
    await root.ok('create', '--name', 'noinit-c', 'busybox', 'true');
    assert.equal((await root.inspect('noinit-c')).HostConfig.Init, false);
    await root.ok('rm', 'init-c', 'noinit-c');
  });

  test('orphans are reaped with --init, and stay zombies without it', async () => {
    // the subshell's child ("sleep 1") is orphaned to pid 1, which by then is (or runs) "sleep 1d"
    const script = '(sleep 1 &); exec sleep 1d';
    await root.ok('run', '-d', '--name', 'zombie', 'busybox', 'sh', '-c', script);
    const z = await waitFor('a zombie under a pid 1 that does not reap', async () =>
      (await processes('zombie')).find((p) => p.stat.startsWith('Z')),
    );
    assert.equal(z.args, '[sleep]');
    await root.ok('run', '-d', '--name', 'reaped', '--init', 'busybox', 'sh', '-c', script);
    // the orphan ends after a second and is a zombie for a moment, until tini (pid 1) reaps it: wait until neither a
    // live "sleep 1" nor a zombie is left (without an init that reaps, the zombie stays and this times out)
    const ps = await waitFor('the orphan to end and be reaped', async () => {
      const list = await processes('reaped');
      // "sleep 1d" runs once the subshell has started "sleep 1"
      const settled =
        list.some((p) => p.args === 'sleep 1d') && !list.some((p) => p.args === 'sleep 1' || p.stat.startsWith('Z'));
      return settled ? list : undefined;
    });
    assert.deepEqual(
      ps.map((p) => [p.pid === 1 ? 1 : 'child', p.stat.startsWith('Z') ? 'zombie' : 'live', p.args]),
      [
        [1, 'live', '/sbin/docker-init -- sh -c (sleep 1 &); exec sleep 1d'],
        ['child', 'live', 'sleep 1d'],
      ],
    );
    await root.ok('rm', '-f', 'zombie');
  });

  test('stop forwards the stop signal through tini: the command ends by SIGTERM, not the SIGKILL after the timeout', async () => {
    // sleep as pid 1 ignores SIGTERM (no handler); as tini's child it is killed by it
    await root.ok('stop', '-t', '60', 'reaped');
    const i = await root.inspect('reaped');
    assert.equal(i.State.Status, 'exited');
    assert.equal(i.State.ExitCode, 143);
    await root.ok('rm', 'reaped');
  });
});

describe('healthchecks', () => {
  test('starting → unhealthy after the retries → healthy after one success; log, events, ps status', async () => {
    const id = idsIn(
      await root.ok(
        'run',
        '-d',
        '--name',
        'hc',
        '--health-cmd',
        'echo probe; test -e /tmp/ok',
        '--health-interval',
        '200ms',
        '--health-retries',
        '2',
        'busybox',
        'sleep',
        '1d',
      ),
    )[0]!;
    const first = await root.inspect('hc');
    assert.equal((first.State as { Health?: Health }).Health?.Status, 'starting');
    assert.match(await root.ok('ps'), /Up .* \(health: starting\)\s+container\s+hc/);
    const cfg = (first.Config as { Healthcheck: Record<string, unknown> }).Healthcheck;
    assert.deepEqual(cfg, {
      Test: ['CMD-SHELL', 'echo probe; test -e /tmp/ok'],
      Interval: 200_000_000,
      Timeout: 30_000_000_000,
      StartPeriod: 0,
      Retries: 2,
    });
    const bad = await healthUntil('hc', 'unhealthy', (h) => h.Status === 'unhealthy');
    assert.ok(bad.FailingStreak >= 2);
    assert.equal(bad.Log.at(-1)!.ExitCode, 1);
    assert.equal(bad.Log.at(-1)!.Output, 'probe\n');
    assert.match(await root.ok('ps'), /Up .* \(unhealthy\)\s+container\s+hc/);
    // `hull healthcheck run`: podman's exit status and word
    const run = await root.hull('healthcheck', 'run', 'hc');
    assert.equal(run.code, 1);
    assert.equal(run.stdout, 'unhealthy\n');

    await root.ok('exec', 'hc', 'touch', '/tmp/ok');
    const good = await healthUntil('hc', 'healthy', (h) => h.Status === 'healthy');
    assert.equal(good.FailingStreak, 0);
    assert.equal(good.Log.at(-1)!.ExitCode, 0);
    assert.equal((await root.hull('healthcheck', 'run', 'hc')).code, 0);
    // docker keeps the last 5 results
    await healthUntil('hc', 'a full log', (h) => h.Log.length === 5);
    assert.match(await root.ok('ps'), /Up .* \(healthy\)\s+container\s+hc/);

    const events = (await root.ok('events', '--since', '0', '--no-follow', '--format', 'json'))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { id: string; Action: string })
      .filter((e) => e.id === id && e.Action.startsWith('health_status'))
      .map((e) => e.Action);
    assert.deepEqual(events.slice(0, 2), ['health_status: unhealthy', 'health_status: healthy']);

    // the monitor runs while the instance runs, and ends with its run
    assert.equal(monitors(id).length, 1);
    await root.ok('kill', 'hc');
    await waitFor('the health monitor to end with the run', () => monitors(id).length === 0 || undefined);
    // docker does not restart for health; a new start gets a new monitor and starts over
    await root.ok('start', 'hc');
    assert.equal((await health('hc'))!.Status, 'starting');
    await waitFor('a new monitor', () => monitors(id).length === 1 || undefined);
    await root.ok('rm', '-f', 'hc');
    await waitFor('the health monitor to end with rm', () => monitors(id).length === 0 || undefined);
  });

  test('failures in the start period do not count', async () => {
    await root.ok(
      'run',
      '-d',
      '--name',
      'sp',
      '--health-cmd',
      'false',
      '--health-interval',
      '100ms',
      '--health-retries',
      '1',
      '--health-start-period',
      '1h',
      'busybox',
      'sleep',
      '1d',
    );
    const h = await healthUntil('sp', 'three failed probes', (x) => x.Log.length >= 3);
    assert.equal(h.Status, 'starting');
    assert.equal(h.FailingStreak, 0);
    assert.ok(h.Log.every((l) => l.ExitCode === 1));
    await root.ok('rm', '-f', 'sp');
  });

  test("a probe past --health-timeout fails with docker's message", async () => {
    await root.ok(
      'run',
      '-d',
      '--name',
      'slow',
      '--health-cmd',
      'sleep 5',
      '--health-interval',
      '100ms',
      '--health-timeout',
      '200ms',
      '--health-retries',
      '1',
      'busybox',
      'sleep',
      '1d',
    );
    const h = await healthUntil('slow', 'unhealthy', (x) => x.Status === 'unhealthy');
    assert.equal(h.Log.at(-1)!.ExitCode, -1);
    assert.equal(h.Log.at(-1)!.Output, 'Health check exceeded timeout (200ms)');
    await root.ok('rm', '-f', 'slow');
  });

  test("the image's HEALTHCHECK (hull build), and --no-healthcheck", async () => {
    const ctx = mkdtempSync(join(tmp, 'ctx-'));
    writeFileSync(
      join(ctx, 'Containerfile'),
      'FROM busybox\nHEALTHCHECK --interval=100ms --retries=1 CMD ["test", "-e", "/etc/passwd"]\nCMD ["sleep", "1d"]\n',
    );
    await root.ok('build', '-q', '-t', 'hc-image', ctx);
    const id = idsIn(await root.ok('run', '-d', '--name', 'img-hc', 'hc-image'))[0]!;
    assert.deepEqual((await root.inspect('img-hc')).Config.Healthcheck, {
      Test: ['CMD', 'test', '-e', '/etc/passwd'],
      Interval: 100_000_000,
      Timeout: 30_000_000_000,
      StartPeriod: 0,
      Retries: 1,
    });
    await healthUntil('img-hc', 'healthy', (h) => h.Status === 'healthy');
    // flags override the image's fields one by one
    await root.ok('create', '--name', 'img-hc2', '--health-retries', '7', 'hc-image');
    const c2 = (await root.inspect('img-hc2')).Config.Healthcheck as { Test: string[]; Retries: number };
    assert.deepEqual([c2.Test[0], c2.Retries], ['CMD', 7]);

    const noId = idsIn(await root.ok('run', '-d', '--name', 'img-nohc', '--no-healthcheck', 'hc-image'))[0]!;
    const i = await root.inspect('img-nohc');
    assert.equal(i.Config.Healthcheck, undefined);
    assert.equal((i.State as { Health?: Health }).Health, undefined);
    assert.deepEqual(monitors(noId), []);
    assert.doesNotMatch(await root.ok('ps'), /img-nohc.*\(|\(.*img-nohc/);
    const none = await root.hull('healthcheck', 'run', 'img-nohc');
    assert.equal(none.code, 1);
    assert.match(none.stderr, /has no healthcheck/);
    const both = await root.hull('create', '--no-healthcheck', '--health-cmd', 'true', 'busybox', 'true');
    assert.equal(both.code, 125);
    assert.match(both.stderr, /--no-healthcheck conflicts with --health-\* options/);
    await root.ok('rm', '-f', 'img-hc', 'img-hc2', 'img-nohc');
    await waitFor('the health monitor to end', () => monitors(id).length === 0 || undefined);
    await root.ok('rmi', 'hc-image');
  });
});

describe('run flags', () => {
  test("--add-host NAME:host-gateway is the host's address on the default network", async () => {
    const hosts = await root.ok('run', '--rm', '--add-host', 'gw.test:host-gateway', 'busybox', 'cat', '/etc/hosts');
    const net = JSON.parse(await root.ok('network', 'inspect', 'hull'))[0] as {
      IPAM: { Config: { Gateway: string }[] };
    };
    const gateway = net.IPAM.Config[0]!.Gateway;
    assert.match(gateway, /^\d+\.\d+\.\d+\.\d+$/);
    assert.ok(hosts.split('\n').includes(`${gateway}\tgw.test`), hosts);
  });

  test('-a attaches only the named streams', async () => {
    const script = 'echo to-out; echo to-err >&2';
    const out = await root.hull('run', '--rm', '-a', 'stdout', 'busybox', 'sh', '-c', script);
    assert.equal(out.code, 0);
    assert.deepEqual([out.stdout, out.stderr], ['to-out\n', '']);
    const err = await root.hull('run', '--rm', '-a', 'stderr', 'busybox', 'sh', '-c', script);
    assert.deepEqual([err.stdout, err.stderr], ['', 'to-err\n']);
    const bad = await root.hull('run', '--rm', '-a', 'stdall', 'busybox', 'true');
    assert.equal(bad.code, 125);
    assert.match(bad.stderr, /invalid --attach "stdall"/);
    const detached = await root.hull('run', '-d', '-a', 'stdout', 'busybox', 'true');
    assert.equal(detached.code, 125);
    assert.match(detached.stderr, /conflicting options: -a and -d/);
    // create -a, then start -a: the streams chosen at create
    await root.ok('create', '--name', 'attach-later', '-a', 'stderr', 'busybox', 'sh', '-c', script);
    const later = await root.hull('start', '-a', 'attach-later');
    assert.deepEqual([later.stdout, later.stderr], ['', 'to-err\n']);
    await root.ok('rm', 'attach-later');
  });

  test('--cidfile writes the full id; an existing file is refused before anything is made', async () => {
    const file = join(tmp, 'cid');
    const id = (await root.ok('create', '--name', 'cid-first', '--cidfile', file, 'busybox', 'true')).trim();
    assert.equal(readFileSync(file, 'utf8'), id);
    assert.match(id, /^[0-9a-f]{64}$/);
    const before = await root.ids();
    const again = await root.hull('run', '--rm', '--cidfile', file, 'busybox', 'true');
    assert.equal(again.code, 125);
    assert.equal(
      again.stderr,
      `hull: container ID file found, make sure the other container isn't running or delete ${file}\n`,
    );
    assert.deepEqual(await root.ids(), before);
    assert.equal(readFileSync(file, 'utf8'), id);
    // a create that fails (the name is taken) leaves no file behind
    const file2 = join(tmp, 'cid2');
    const failed = await root.hull('create', '--cidfile', file2, '--name', 'cid-first', 'busybox', 'true');
    assert.notEqual(failed.code, 0);
    assert.match(failed.stderr, /already in use/);
    assert.equal(existsSync(file2), false);
    await root.ok('rm', id);
  });

  test('--shm-size sizes /dev/shm (default 64m, as docker)', async () => {
    const df = async (...flags: string[]) => {
      const out = await root.ok('run', '--rm', ...flags, 'busybox', 'df', '-k', '/dev/shm');
      return Number(out.trim().split('\n')[1]!.trim().split(/\s+/)[1]);
    };
    assert.equal(await df(), 65536);
    assert.equal(await df('--shm-size', '128m'), 131072);
    await root.ok('create', '--name', 'shm', '--shm-size', '1g', 'busybox', 'true');
    assert.equal((await root.inspect('shm')).HostConfig.ShmSize, 1024 ** 3);
    await root.ok('rm', 'shm');
    const bad = await root.hull('run', '--rm', '--shm-size', '0', 'busybox', 'true');
    assert.equal(bad.code, 125);
    assert.match(bad.stderr, /invalid --shm-size/);
  });

  test('leaves nothing behind (no health monitor either)', () => root.cleanupAndCheck());
});
