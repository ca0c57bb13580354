// Virtual networks end to end, on this machine's real namespaces, bridges and iptables. Traffic stays on
// loopback and on the test's own bridges (subnets 10.9x.0.0/16, bridge names unique to the test root).
import { test, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { createServer, type Server } from 'node:net';
import { HullRoot, jsonLines, waitFor } from './helpers/hull.js';
import { rootHash } from './helpers/leaks.js';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new HullRoot('network');
after(() => root.dispose());

/** GET http://host:port/ from the host (no curl needed). */
function httpGet(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = get({ host, port, path: '/', timeout: 3000 }, (res) => {
      let body = '';
      res
        .setEncoding('utf8')
        .on('data', (c: string) => {
          body += c;
        })
        .on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** A busybox web server serving `text` on port 8080. */
const web = (text: string) => [
  'busybox',
  'sh',
  '-c',
  `mkdir -p /www && echo ${text} > /www/index.html && exec httpd -f -p 8080 -h /www`,
];

/** A free TCP port on 127.0.0.1 (bound and released). */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

function hostLinks(): string[] {
  const r = spawnSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' });
  return (JSON.parse(r.stdout) as { ifname: string }[]).map((l) => l.ifname);
}

describe('networks', { concurrency: false }, () => {
  test('instances on one network reach each other by name and alias; /etc/hosts and resolv.conf are managed', async () => {
    assert.equal((await root.ok('network', 'create', 'backend', '--subnet', '10.91.1.0/24')).trim(), 'backend');
    await root.ok(
      'run',
      '-d',
      '--name',
      'db',
      '--network',
      'backend',
      '--network-alias',
      'database',
      ...web('db-says-hi'),
    );
    const out = await root.ok(
      'run',
      '--rm',
      '--network',
      'backend',
      '--add-host',
      'extra.local:10.91.1.200',
      '--name',
      'client',
      'busybox',
      'sh',
      '-c',
      'wget -qO- http://db:8080/ && wget -qO- http://database:8080/ && cat /etc/resolv.conf /etc/hosts',
    );
    assert.match(out, /db-says-hi\ndb-says-hi\n/);
    assert.match(out, /nameserver 10\.91\.1\.1/);
    assert.match(out, /10\.91\.1\.\d+\t\w+ client/);
    assert.match(out, /10\.91\.1\.200\textra\.local/);
    const net = JSON.parse(await root.ok('network', 'inspect', 'backend'))[0];
    assert.equal(net.IPAM.Config[0].Subnet, '10.91.1.0/24');
    assert.deepEqual(
      Object.values(net.Containers).map((c) => (c as { Name: string }).Name),
      ['db'],
    );
    const ls = jsonLines<{ Name: string; Attached: string }>(await root.ok('network', 'ls', '--format', 'json'));
    assert.equal(ls.find((n) => n.Name === 'backend')?.Attached, '1');
    const ins = await root.inspect('db');
    assert.match((ins.NetworkSettings as { IPAddress: string }).IPAddress, /^10\.91\.1\.\d+$/);
  });

  test('networks are isolated from one another (names and traffic); an instance on both reaches both', async () => {
    await root.ok('network', 'create', 'other', '--subnet', '10.91.2.0/24');
    const dbIp = ((await root.inspect('db')).NetworkSettings as { IPAddress: string }).IPAddress;
    const r = await root.hull(
      'run',
      '--rm',
      '--network',
      'other',
      'busybox',
      'sh',
      '-c',
      `nslookup db >/dev/null 2>&1 && echo resolved; timeout 3 wget -qO- http://${dbIp}:8080/ >/dev/null 2>&1 && echo reached; echo done`,
    );
    assert.equal(r.stdout, 'done\n', r.stderr);
    const both = await root.ok(
      'run',
      '--rm',
      '--network',
      'other',
      '--network',
      'backend',
      'busybox',
      'sh',
      '-c',
      'wget -qO- http://db:8080/; ip -o -4 addr show | grep -c eth',
    );
    assert.equal(both, 'db-says-hi\n2\n');
  });

  test('--internal: no route off the network, but the network itself works', async () => {
    await root.ok('network', 'create', 'inner', '--internal', '--subnet', '10.91.3.0/24', '--mtu', '1400');
    await root.ok('run', '-d', '--name', 'isrv', '--network', 'inner', ...web('inside'));
    const out = await root.ok(
      'run',
      '--rm',
      '--network',
      'inner',
      'busybox',
      'sh',
      '-c',
      'ip route | grep -c default; wget -qO- http://isrv:8080/; cat /sys/class/net/eth0/mtu; wget -qO- http://10.91.1.1:9/ 2>&1 | grep -c unreachable',
    );
    assert.equal(out, '0\ninside\n1400\n1\n');
    await root.ok('rm', '-f', 'isrv');
  });

  test('published ports: 127.0.0.1:HOST:CTR, random host ports, hull port, conflicts refused', async () => {
    const port = await freePort();
    await root.ok('run', '-d', '--name', 'pub', '-p', `127.0.0.1:${port}:8080`, ...web('published'));
    assert.equal(await waitFor('the published port', () => httpGet('127.0.0.1', port).catch(() => '')), 'published\n');
    assert.equal((await root.ok('port', 'pub')).trim(), `8080/tcp -> 127.0.0.1:${port}`);
    // the same host port again: another instance holds it
    const again = await root.hull('run', '-d', '-p', `127.0.0.1:${port}:8080`, 'busybox', 'true');
    assert.equal(again.code, 125);
    assert.match(again.stderr, /host port 127\.0\.0\.1:\d+\/tcp is already published by another instance/);
    // a host process holds the port
    const hostSrv: Server = await new Promise((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => resolve(s));
    });
    const held = (hostSrv.address() as { port: number }).port;
    const busy = await root.hull('run', '-d', '-p', `127.0.0.1:${held}:8080`, 'busybox', 'true');
    hostSrv.close();
    assert.equal(busy.code, 125);
    assert.match(busy.stderr, /already in use by a process on this host/);
    // -p CTR: a random host port
    await root.ok('run', '-d', '--name', 'rnd', '-p', '127.0.0.1::8080', ...web('random'));
    const m = /8080\/tcp -> 127\.0\.0\.1:(\d+)/.exec(await root.ok('port', 'rnd'));
    assert.ok(m, 'hull port shows the random port');
    assert.equal(
      await waitFor('the random port', () => httpGet('127.0.0.1', Number(m[1])).catch(() => '')),
      'random\n',
    );
    // nothing half-made by the refused runs
    assert.equal((await root.ids()).length, 3, 'db, pub, rnd: the refused runs left no instance');
    await root.ok('rm', '-f', 'rnd', 'pub');
  });

  test('stop releases address and ports; start attaches again with the same static address', async () => {
    await root.ok('run', '-d', '--name', 'st', '--network', 'backend', '--ip', '10.91.1.50', ...web('static'));
    assert.equal(((await root.inspect('st')).NetworkSettings as { IPAddress: string }).IPAddress, '10.91.1.50');
    const dup = await root.hull('run', '--rm', '--network', 'backend', '--ip', '10.91.1.50', 'busybox', 'true');
    assert.equal(dup.code, 125);
    assert.match(dup.stderr, /address 10\.91\.1\.50 on network backend is already in use/);
    await root.ok('stop', '-t', '1', 'st');
    assert.equal(((await root.inspect('st')).NetworkSettings as { IPAddress: string }).IPAddress, '');
    await root.ok('start', 'st');
    assert.equal(
      await root.ok('run', '--rm', '--network', 'backend', 'busybox', 'wget', '-qO-', 'http://st:8080/'),
      'static\n',
    );
    await root.ok('rm', '-f', 'st');
  });

  test('a start after the supervisor died keeps the attachment when CNI CHECK passes', async () => {
    await root.ok('create', '--name', 'orphan', '--network', 'backend', ...web('orphan'));
    const before = JSON.parse(
      readFileSync(
        join(root.dir, 'networks', 'attachments', (await root.inspect('orphan')).Id, 'backend.json'),
        'utf8',
      ),
    );
    process.kill((await root.inspect('orphan')).Hull.SupervisorPid, 'SIGKILL');
    const r = await root.hullWith({ env: { HULL_TRACE: '1' } }, 'start', 'orphan');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /attachments reused after CNI CHECK/);
    assert.equal(
      ((await root.inspect('orphan')).NetworkSettings as { IPAddress: string }).IPAddress,
      before.attachment.address.split('/')[0],
    );
    assert.equal(
      await root.ok('run', '--rm', '--network', 'backend', 'busybox', 'wget', '-qO-', 'http://orphan:8080/'),
      'orphan\n',
    );
    await root.ok('rm', '-f', 'orphan');
  });

  test('connect and disconnect a running instance', async () => {
    await root.ok('run', '-d', '--name', 'mover', '--network', 'other', ...web('mover'));
    await root.ok('network', 'connect', 'backend', 'mover');
    assert.equal(
      await root.ok('run', '--rm', '--network', 'backend', 'busybox', 'wget', '-qO-', 'http://mover:8080/'),
      'mover\n',
    );
    await root.ok('network', 'disconnect', 'backend', 'mover');
    const r = await root.hull(
      'run',
      '--rm',
      '--network',
      'backend',
      'busybox',
      'sh',
      '-c',
      'nslookup mover >/dev/null 2>&1 && echo found; echo done',
    );
    assert.equal(r.stdout, 'done\n');
    await root.ok('rm', '-f', 'mover');
  });

  test('bad input: one clear line, nothing half-created', async () => {
    const cases: [string[], RegExp][] = [
      [['network', 'create', 'clash', '--subnet', '10.91.1.128/25'], /overlaps network backend/],
      [['network', 'create', 'badnet', '--subnet', '10.91.7.1/24'], /host bits are set/],
      [['network', 'create', 'badnet', '--subnet', 'banana'], /CIDR/],
      [['network', 'create', 'backend'], /already exists/],
      [
        ['run', '--rm', '--network', 'backend', '--ip', '10.91.9.9', 'busybox', 'true'],
        /outside network backend's subnet 10\.91\.1\.0\/24/,
      ],
      [['run', '--rm', '--network', 'nowhere', 'busybox', 'true'], /network "nowhere" not found/],
      [['run', '--rm', '--network', 'none', '-p', '80', 'busybox', 'true'], /cannot publish ports with --network none/],
      [['run', '--rm', '-p', '80/sctp', 'busybox', 'true'], /unknown protocol/],
      [['network', 'rm', 'backend'], /network backend is used by instance\(s\) db/],
      [['network', 'rm', 'nowhere'], /network "nowhere" not found/],
    ];
    for (const [args, re] of cases) {
      const r = await root.hull(...args);
      // docker's statuses: run 125, the network commands 1
      assert.equal(r.code, args[0] === 'run' ? 125 : 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re, args.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    }
    const names = (await root.ok('network', 'ls', '-q')).split('\n').filter(Boolean).sort();
    assert.deepEqual(names, ['backend', 'hull', 'inner', 'other']);
  });

  test('after a host restart, running instances with a restart policy get their networks back', async () => {
    // its own root whose commands all carry the simulated boot id (see e2e-restart.test.ts)
    const boot = new HullRoot('netboot', { HULL_BOOT_ID: 'net-boot-one' });
    try {
      await boot.ok('network', 'create', 'bootnet', '--subnet', '10.91.5.0/24');
      await boot.ok(
        'run',
        '-d',
        '--name',
        'keeper',
        '--restart',
        'always',
        '--network',
        'bootnet',
        '--ip',
        '10.91.5.60',
        '-p',
        '127.0.0.1::8080',
        ...web('kept'),
      );
      await boot.ok('run', '-d', '--name', 'plain', '--network', 'bootnet', 'busybox', 'sleep', '300');
      // the "reboot": supervisors first (so that no exit command runs), then the instances' processes; the
      // namespaces, bridge and rules stay, stale, which is what hull must cope with as well as their absence
      for (const n of ['keeper', 'plain']) {
        const i = await boot.inspect(n);
        process.kill(i.Hull.SupervisorPid, 'SIGKILL');
        process.kill(i.State.Pid, 'SIGKILL');
      }
      boot.env.HULL_BOOT_ID = 'net-boot-two';
      const ps = jsonLines<{ Names: string; State: string }>(await boot.ok('ps', '-a', '--format', 'json'));
      assert.deepEqual(Object.fromEntries(ps.map((p) => [p.Names, p.State])), { keeper: 'running', plain: 'exited' });
      const k = await boot.inspect('keeper');
      assert.equal((k.NetworkSettings as { IPAddress: string }).IPAddress, '10.91.5.60');
      const port = Number(/127\.0\.0\.1:(\d+)/.exec(await boot.ok('port', 'keeper'))![1]);
      assert.equal(await waitFor('keeper to serve again', () => httpGet('127.0.0.1', port).catch(() => '')), 'kept\n');
      assert.equal(
        await boot.ok('run', '--rm', '--network', 'bootnet', 'busybox', 'wget', '-qO-', 'http://keeper:8080/'),
        'kept\n',
      );
      await boot.ok('network', 'rm', '-f', 'bootnet');
      await boot.cleanupAndCheck();
    } finally {
      await boot.dispose();
    }
  });

  test('the default network, prune, and removal leave nothing on the host', async () => {
    await root.ok('rm', '-f', 'db');
    assert.match(
      await root.ok('run', '--rm', 'busybox', 'sh', '-c', 'ip -o -4 addr show eth0'),
      /inet 10\.\d+\.\d+\.\d+\//,
    );
    const pruned = (await root.ok('network', 'prune')).split('\n').filter(Boolean).sort();
    assert.deepEqual(pruned, ['backend', 'inner', 'other']);
    await root.ok('network', 'rm', 'hull');
    assert.equal(await root.ok('network', 'ls', '-q'), '');
    assert.deepEqual(
      hostLinks().filter((l) => l.startsWith(`hl${rootHash(root.dir)}`)),
      [],
    );
  });

  test('leaves nothing behind', () => root.cleanupAndCheck());
});
