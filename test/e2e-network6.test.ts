// Networks, docker-parity part two: IPv6 (published ports on [::1] and the host's IPv6 addresses, dual-stack
// networks with IPv6 IPAM and AAAA records), /etc/hosts across network connect/disconnect, and the DNS of
// --internal networks, which must not forward. Traffic stays on loopback, the host's own addresses and the test's
// own bridges; the "upstream" DNS server is a fake one this test runs on 127.0.6.53.
import { test, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { createSocket, type Socket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { readFileSync } from 'node:fs';
import { HullRoot, waitFor } from './helpers/hull.js';

const root = new HullRoot('network6');
after(() => root.dispose());

/** Why IPv6 tests cannot run here, or undefined when they can. */
function noIpv6(): string | undefined {
  try {
    if (readFileSync('/proc/sys/net/ipv6/conf/all/disable_ipv6', 'utf8').trim() !== '0')
      return 'IPv6 is disabled on this host (net.ipv6.conf.all.disable_ipv6=1)';
    if (readFileSync('/proc/sys/net/ipv6/conf/lo/disable_ipv6', 'utf8').trim() !== '0')
      return 'IPv6 is disabled on loopback';
  } catch {
    return 'this kernel has no IPv6';
  }
  return undefined;
}
const skip6 = noIpv6();

/** A global (not link-local, not loopback) IPv6 address of this host, if it has one. */
function hostV6(): string | undefined {
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? [])
      if (a.family === 'IPv6' && !a.internal && !a.address.startsWith('fe80') && a.scopeid === 0) return a.address;
  return undefined;
}

/** GET http://host:port/ from the host; rejects on refusal. */
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

/** Whether a TCP connect to host:port is refused (nothing listens, no DNAT). */
function refused(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = get({ host, port, path: '/', timeout: 3000 }, () => resolve(false));
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

const web = (text: string) => [
  'busybox',
  'sh',
  '-c',
  `mkdir -p /www && echo ${text} > /www/index.html && exec httpd -f -p 8080 -h /www`,
];

/** Free TCP ports on both 0.0.0.0 and [::] (bound and released). */
async function freePort(): Promise<number> {
  for (;;) {
    const p = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '0.0.0.0', () => {
        const port = (s.address() as { port: number }).port;
        s.close(() => resolve(port));
      });
    });
    const ok = await new Promise<boolean>((resolve) => {
      const s = createServer()
        .once('error', () => resolve(false))
        .listen({ port: p, host: '::', ipv6Only: true }, () => s.close(() => resolve(true)));
    });
    if (ok) return p;
  }
}

/**
 * A fake upstream DNS server on 127.0.6.53:53: answers every A query with 192.0.2.66 (TEST-NET-1) and records
 * the names asked. aardvark-dns forwards to port 53 of its upstreams, from the host's namespace.
 */
async function fakeDns(): Promise<{ names: string[]; close: () => Promise<void> }> {
  const names: string[] = [];
  const sock: Socket = createSocket('udp4');
  sock.on('message', (q, from) => {
    if (q.length < 12) return;
    let i = 12;
    const labels: string[] = [];
    while (i < q.length && q[i] !== 0) {
      labels.push(q.subarray(i + 1, i + 1 + q[i]!).toString('latin1'));
      i += q[i]! + 1;
    }
    const qEnd = i + 5;
    const qtype = q.readUInt16BE(i + 1);
    names.push(labels.join('.'));
    const header = Buffer.alloc(12);
    header.writeUInt16BE(q.readUInt16BE(0), 0);
    header.writeUInt16BE(0x8180, 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(qtype === 1 ? 1 : 0, 6);
    const answer =
      qtype === 1 ? Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 66]) : Buffer.alloc(0);
    sock.send(Buffer.concat([header, q.subarray(12, qEnd), answer]), from.port, from.address);
  });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(53, '127.0.6.53', () => resolve());
  });
  return { names, close: () => new Promise((resolve) => sock.close(() => resolve())) };
}

describe('networks: IPv6, /etc/hosts on connect, internal DNS', { concurrency: false }, () => {
  test('published ports answer on [::1] and the host IPv6 addresses (an IPv4-only network)', {
    skip: skip6,
  }, async () => {
    await root.ok('network', 'create', 'v4only', '--subnet', '10.91.60.0/24');
    const port = await freePort();
    await root.ok('run', '-d', '--name', 'pub6', '--network', 'v4only', '-p', `${port}:8080`, ...web('pub6'));
    assert.equal(await waitFor('[::1]', () => httpGet('::1', port).catch(() => '')), 'pub6\n');
    assert.equal(await httpGet('127.0.0.1', port), 'pub6\n');
    const own = hostV6();
    if (own) assert.equal(await httpGet(own, port), 'pub6\n', `the host's own address ${own}`);
    else process.stderr.write('# no global IPv6 address on this host: only [::1] checked\n');
    // docker's listing: both address families
    assert.equal(await root.ok('port', 'pub6'), `8080/tcp -> 0.0.0.0:${port}\n8080/tcp -> [::]:${port}\n`);
    // the same port on [::] again is refused with the one line of a conflict
    const again = await root.hull('run', '-d', '--network', 'v4only', '-p', `[::]:${port}:8080`, 'busybox', 'true');
    assert.equal(again.code, 125);
    assert.match(again.stderr, /host port \[::\]:\d+\/tcp is already in use/);

    // -p [::1]:HOST:CTR: IPv6 loopback only (no IPv4 DNAT)
    const lo6 = await freePort();
    await root.ok('run', '-d', '--name', 'lo6', '--network', 'v4only', '-p', `[::1]:${lo6}:8080`, ...web('lo6'));
    assert.equal(await waitFor('[::1] only', () => httpGet('::1', lo6).catch(() => '')), 'lo6\n');
    assert.equal(await refused('127.0.0.1', lo6), true, 'nothing on 127.0.0.1');
    assert.equal(await root.ok('port', 'lo6'), `8080/tcp -> [::1]:${lo6}\n`);
    assert.equal(
      (((await root.inspect('lo6')).NetworkSettings as { Ports: Record<string, { HostIp: string }[]> }).Ports[
        '8080/tcp'
      ] ?? [])[0]?.HostIp,
      '::1',
    );
    await root.ok('rm', '-f', 'pub6', 'lo6');
    // the proxy went with them: the ports are free again
    assert.equal(await refused('::1', port), true);
    assert.equal(await refused('::1', lo6), true);
  });

  test('dual-stack networks: --ipv6 --subnet, IPAM, inspect, AAAA, traffic over IPv6', { skip: skip6 }, async () => {
    await root.ok('network', 'create', 'dual', '--ipv6', '--subnet', 'fd00:6e76:1::/64', '--subnet', '10.91.61.0/24');
    const net = JSON.parse(await root.ok('network', 'inspect', 'dual'))[0];
    assert.equal(net.EnableIPv6, true);
    assert.deepEqual(net.IPAM.Config, [
      { Subnet: '10.91.61.0/24', Gateway: '10.91.61.1' },
      { Subnet: 'fd00:6e76:1::/64', Gateway: 'fd00:6e76:1::1' },
    ]);
    const port = await freePort();
    await root.ok('run', '-d', '--name', 'srv6', '--network', 'dual', '-p', `${port}:8080`, ...web('dual'));
    const ns = (await root.inspect('srv6')).NetworkSettings as Record<string, unknown> & {
      Networks: Record<string, Record<string, unknown>>;
    };
    assert.match(ns.IPAddress as string, /^10\.91\.61\.\d+$/);
    assert.match(ns.GlobalIPv6Address as string, /^fd00:6e76:1::[0-9a-f]+$/);
    assert.equal(ns.GlobalIPv6PrefixLen, 64);
    assert.equal(ns.IPv6Gateway, 'fd00:6e76:1::1');
    assert.equal(ns.Networks.dual!.GlobalIPv6Address, ns.GlobalIPv6Address);
    const v6 = ns.GlobalIPv6Address as string;
    const members = Object.values(JSON.parse(await root.ok('network', 'inspect', 'dual'))[0].Containers) as {
      IPv6Address: string;
    }[];
    assert.equal(members[0]?.IPv6Address, `${v6}/64`);
    const out = await root.ok(
      'run',
      '--rm',
      '--network',
      'dual',
      'busybox',
      'sh',
      '-c',
      `nslookup -type=AAAA srv6 | grep -c '${v6}'; wget -qO- http://[${v6}]:8080/; ip -6 route | grep -c '^default via fd00:6e76:1::1'; ip -o -6 addr show eth0 scope global | grep -c fd00:6e76:1::`,
    );
    assert.equal(out, '1\ndual\n1\n1\n');
    // published ports: IPv4 through DNAT, IPv6 loopback through the proxy
    assert.equal(await waitFor('[::1]', () => httpGet('::1', port).catch(() => '')), 'dual\n');
    assert.equal(await httpGet('127.0.0.1', port), 'dual\n');
    // --ipv6 with an IPv6 subnet alone: the IPv4 subnet is picked, both addresses handed out
    await root.ok('network', 'create', 'six', '--ipv6', '--subnet', 'fd00:6e76:2::/64');
    const both = await root.ok('run', '--rm', '--network', 'six', 'busybox', 'ip', '-o', 'addr', 'show', 'eth0');
    assert.match(both, /inet 10\.\d+\.\d+\.\d+\//);
    assert.match(both, /inet6 fd00:6e76:2::[0-9a-f]+\/64/);
    // bad IPv6 input: one line, nothing made
    for (const [args, re] of [
      [['network', 'create', 'x6', '--subnet', 'fd00:6e76:3::/64'], /needs --ipv6/],
      [['network', 'create', 'x6', '--ipv6', '--subnet', 'fd00:6e76:1:0:8000::/65'], /overlaps network dual/],
      [['network', 'create', 'x6', '--ipv6', '--subnet', 'fd00:6e76:3::1/64'], /host bits are set/],
      [['run', '--rm', '-p', '[::1:80', 'busybox', 'true'], /IPv6 host address/],
    ] as [string[], RegExp][]) {
      const r = await root.hull(...args);
      // docker's statuses: run 125, the network commands 1
      assert.equal(r.code, args[0] === 'run' ? 125 : 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
    await root.ok('rm', '-f', 'srv6');
    await root.ok('network', 'rm', 'dual', 'six');
  });

  test('network connect/disconnect add and remove the /etc/hosts line of the address', async () => {
    await root.ok('network', 'create', 'hosta', '--subnet', '10.91.62.0/24');
    await root.ok('network', 'create', 'hostb', '--subnet', '10.91.63.0/24');
    await root.ok('run', '-d', '--name', 'mover', '--hostname', 'mv', '--network', 'hosta', 'busybox', 'sleep', '300');
    await root.ok('network', 'connect', 'hostb', 'mover');
    const ip = ((await root.inspect('mover')).NetworkSettings as { Networks: Record<string, { IPAddress: string }> })
      .Networks.hostb!.IPAddress;
    assert.match(ip, /^10\.91\.63\.\d+$/);
    const hosts = await root.ok('exec', 'mover', 'cat', '/etc/hosts');
    assert.match(hosts, /^10\.91\.62\.\d+\tmv mover$/m);
    assert.ok(hosts.includes(`\n${ip}\tmv mover\n`), hosts);
    await root.ok('network', 'disconnect', 'hostb', 'mover');
    const after = await root.ok('exec', 'mover', 'cat', '/etc/hosts');
    assert.ok(!after.includes(ip), after);
    assert.match(after, /^10\.91\.62\.\d+\tmv mover$/m);
    await root.ok('rm', '-f', 'mover');
    await root.ok('network', 'rm', 'hosta', 'hostb');
  });

  test('an --internal network resolves instance names but forwards nothing; others forward', async (t) => {
    let dns: Awaited<ReturnType<typeof fakeDns>>;
    try {
      dns = await fakeDns();
    } catch (e) {
      t.skip(`cannot run the fake upstream DNS server on 127.0.6.53:53 (${(e as Error).message})`);
      return;
    }
    try {
      await root.ok('network', 'create', 'outer', '--subnet', '10.91.64.0/24');
      await root.ok('network', 'create', 'sealed', '--internal', '--subnet', '10.91.65.0/24');
      const lookup = 'nslookup example.com 2>&1; echo status=$?';
      const open = await root.ok(
        'run',
        '--rm',
        '--network',
        'outer',
        '--dns',
        '127.0.6.53',
        'busybox',
        'sh',
        '-c',
        lookup,
      );
      assert.match(open, /192\.0\.2\.66/, open);
      assert.ok(dns.names.includes('example.com'), `the fake upstream was asked: ${dns.names.join(',')}`);
      const before = dns.names.length;
      await root.ok('run', '-d', '--name', 'inside', '--network', 'sealed', 'busybox', 'sleep', '300');
      const sealed = await root.ok(
        'run',
        '--rm',
        '--network',
        'sealed',
        '--dns',
        '127.0.6.53',
        'busybox',
        'sh',
        '-c',
        `${lookup}; nslookup inside >/dev/null 2>&1 && echo inside-resolved`,
      );
      assert.doesNotMatch(sealed, /192\.0\.2\.66/, sealed);
      assert.match(sealed, /status=1/);
      assert.match(sealed, /inside-resolved/);
      // aardvark answered NXDOMAIN itself: nothing reached the upstream
      assert.equal(
        dns.names.length,
        before,
        `forwarded from the internal network: ${dns.names.slice(before).join(',')}`,
      );
      await root.ok('rm', '-f', 'inside');
      await root.ok('network', 'rm', 'outer', 'sealed');
    } finally {
      await dns.close();
    }
  });

  test('leaves nothing behind', async () => {
    await root.hull('network', 'rm', 'v4only');
    await root.cleanupAndCheck();
  });
});
