// Network pieces that need no host changes: address arithmetic, -p parsing, definitions, CNI plugin configs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cidrsOverlap, parseCidr, parseIp, formatIp } from '../src/network/ipv4.js';
import { cidrs6Overlap, formatIp6, parseCidr6, parseIp6 } from '../src/network/ipv6.js';
import { exposedToMappings, parsePublish } from '../src/network/ports.js';
import { NetworkStore, DEFAULT_NETWORK } from '../src/network/store.js';
import { pluginConfig } from '../src/network/cni.js';
import { NetworkManager } from '../src/network/manager.js';

test('IPv4 parsing and overlap', () => {
  assert.equal(formatIp(parseIp('10.89.1.5')), '10.89.1.5');
  assert.throws(() => parseIp('10.89.1.256'), /0-255/);
  assert.throws(() => parseIp('fd00::1'), /an IPv4 address is expected here/);
  assert.throws(() => parseCidr('10.89.1.1/24'), /host bits are set; did you mean 10.89.1.0\/24/);
  assert.throws(() => parseCidr('10.89.1.0'), /CIDR/);
  assert.throws(() => parseCidr('10.89.1.0/31'), /between/);
  assert.ok(cidrsOverlap(parseCidr('10.89.0.0/16'), parseCidr('10.89.1.0/24')));
  assert.ok(!cidrsOverlap(parseCidr('10.89.1.0/24'), parseCidr('10.89.2.0/24')));
});

test('IPv6 parsing, RFC 5952 formatting, overlap', () => {
  assert.equal(formatIp6(parseIp6('FD00:ABCD:0:0:0:0:0:2')), 'fd00:abcd::2');
  assert.equal(formatIp6(parseIp6('::1')), '::1');
  assert.equal(formatIp6(parseIp6('::')), '::');
  assert.equal(formatIp6(parseIp6('2001:db8:0:1:0:0:0:1')), '2001:db8:0:1::1');
  assert.equal(formatIp6(parseIp6('2001:db8::1:0:0:1')), '2001:db8::1:0:0:1');
  assert.equal(formatIp6(parseIp6('1:0:0:2:0:0:0:3')), '1:0:0:2::3');
  assert.equal(formatIp6(parseIp6('::ffff:10.0.0.1')), '::ffff:a00:1');
  assert.throws(() => parseIp6('10.0.0.1'), /IPv6 address/);
  assert.throws(() => parseIp6('fd00::1::2'), /IPv6 address/);
  assert.throws(() => parseCidr6('fd00:abcd::1/64'), /host bits are set; did you mean fd00:abcd::\/64/);
  assert.throws(() => parseCidr6('fd00::/127'), /between \/48 and \/120/);
  assert.ok(cidrs6Overlap(parseCidr6('fd00:abcd::/48'), parseCidr6('fd00:abcd:0:5::/64')));
  assert.ok(!cidrs6Overlap(parseCidr6('fd00:abcd:0:1::/64'), parseCidr6('fd00:abcd:0:2::/64')));
});

test('-p parsing follows docker', () => {
  assert.deepEqual(parsePublish('[::1]:18080:8080'), [
    { hostIp: '::1', hostPort: 18080, containerPort: 8080, protocol: 'tcp' },
  ]);
  assert.deepEqual(parsePublish('[0:0::0]::53/udp'), [
    { hostIp: '::', hostPort: 0, containerPort: 53, protocol: 'udp' },
  ]);
  assert.throws(() => parsePublish('[::1]:80'), /\[ADDRESS\]:HOST:CONTAINER/);
  assert.throws(() => parsePublish('[::1:80:80'), /IPv6 host address/);
  assert.deepEqual(parsePublish('127.0.0.1:18080:8080'), [
    { hostIp: '127.0.0.1', hostPort: 18080, containerPort: 8080, protocol: 'tcp' },
  ]);
  assert.deepEqual(parsePublish('8080'), [{ hostIp: '', hostPort: 0, containerPort: 8080, protocol: 'tcp' }]);
  assert.deepEqual(parsePublish('53:53/udp'), [{ hostIp: '', hostPort: 53, containerPort: 53, protocol: 'udp' }]);
  assert.deepEqual(parsePublish('127.0.0.1::80'), [
    { hostIp: '127.0.0.1', hostPort: 0, containerPort: 80, protocol: 'tcp' },
  ]);
  assert.deepEqual(
    parsePublish('8000-8001:80-81').map((m) => [m.hostPort, m.containerPort]),
    [
      [8000, 80],
      [8001, 81],
    ],
  );
  assert.throws(() => parsePublish('8000-8002:80-81'), /differ in length/);
  assert.throws(() => parsePublish('80/sctp'), /unknown protocol/);
  assert.throws(() => parsePublish('70000:80'), /1-65535/);
  assert.throws(() => parsePublish('1.2.3:80:80'), /IPv4/);
  assert.deepEqual(
    exposedToMappings({ '80/tcp': {}, '53/udp': {} }).map((m) => `${m.containerPort}/${m.protocol}:${m.hostPort}`),
    ['80/tcp:0', '53/udp:0'],
  );
});

test('network definitions: validation, overlap, automatic subnets, atomic files', () => {
  const root = mkdtempSync('/tmp/hull-netunit-');
  try {
    const s = new NetworkStore(root);
    const a = s.create({ name: 'backend', subnet: '10.89.1.0/24' });
    assert.equal(a.gateway, '10.89.1.1');
    assert.match(a.bridge, /^hl[0-9a-f]{12}$/);
    assert.equal(JSON.parse(readFileSync(join(root, 'networks', 'backend.json'), 'utf8')).subnet, '10.89.1.0/24');
    assert.throws(
      () => s.create({ name: 'backend', subnet: '10.89.9.0/24' }),
      (e: Error & { code?: string }) => e.code === 'HULL_CONFLICT' && /already exists/.test(e.message),
    );
    assert.throws(() => s.create({ name: 'other', subnet: '10.89.0.0/16' }), /overlaps network backend/);
    assert.throws(() => s.create({ name: 'x', subnet: '10.89.2.0/24', gateway: '10.89.3.1' }), /not a host address/);
    assert.throws(() => s.create({ name: 'x', subnet: '10.89.2.0/24', ipRange: '10.89.3.0/25' }), /inside subnet/);
    assert.throws(() => s.create({ name: 'host' }), /reserved/);
    assert.throws(() => s.create({ name: 'bad name' }), /invalid network name/);
    assert.throws(
      () => s.create({ name: 'x', subnet: '192.168.7.0/24' }, [{ dst: '192.168.0.0/16', dev: 'eth0' }]),
      /host's route to 192.168.0.0\/16 on eth0/,
    );
    // automatic: the first free /24 of the pool, skipping what is taken
    assert.equal(s.create({ name: 'auto' }, [{ dst: '10.89.0.0/24', dev: 'eth9' }]).subnet, '10.89.2.0/24');
    assert.equal(s.create({ name: DEFAULT_NETWORK }).subnet, '10.88.0.0/16');
    assert.deepEqual(
      s.list().map((n) => n.name),
      ['backend', 'auto', DEFAULT_NETWORK],
    );
    assert.throws(() => s.get('nowhere'), /network "nowhere" not found/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('dual-stack definitions: IPv6 subnet and gateway, a free ULA /64 per root, host-local ranges for both', () => {
  const root = mkdtempSync('/tmp/hull-netunit-');
  try {
    const m = new NetworkManager(root);
    const d = m.store.create({ name: 'd1', subnet: '10.89.6.0/24', ipv6: true, subnet6: 'fd00:abcd::/64' });
    assert.deepEqual(d.ipv6, { subnet: 'fd00:abcd::/64', gateway: 'fd00:abcd::1' });
    const auto = m.store.create({ name: 'd2', ipv6: true });
    assert.match(auto.ipv6!.subnet, /^fd[0-9a-f]{2}:[0-9a-f]{1,4}:0:1::\/64$/);
    const auto2 = m.store.create({ name: 'd3', ipv6: true });
    assert.notEqual(auto2.ipv6!.subnet, auto.ipv6!.subnet);
    assert.equal(m.store.create({ name: 'plain' }).ipv6, undefined);
    assert.throws(() => m.store.create({ name: 'x', subnet6: 'fd00:1::/64' }), /needs --ipv6/);
    assert.throws(() => m.store.create({ name: 'x', ipv6: true, subnet6: 'fd00:abcd::/56' }), /overlaps network d1/);
    assert.throws(
      () => m.store.create({ name: 'x', ipv6: true, subnet6: 'fd00:1::/64', gateway6: 'fd00:2::1' }),
      /not a host address/,
    );
    const ipam = m.conflist(d, false).plugins[0]!.ipam as { ranges: unknown[][]; routes: unknown[] };
    assert.deepEqual(ipam.ranges, [
      [{ subnet: '10.89.6.0/24', gateway: '10.89.6.1' }],
      [{ subnet: 'fd00:abcd::/64', gateway: 'fd00:abcd::1' }],
    ]);
    assert.deepEqual(ipam.routes, [{ dst: '0.0.0.0/0' }, { dst: '::/0' }]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('CNI plugin chain: bridge + firewall (+ portmap), host-local under the root, runtimeConfig only where declared', () => {
  const root = mkdtempSync('/tmp/hull-netunit-');
  try {
    const m = new NetworkManager(root);
    const def = m.store.create({
      name: 'n1',
      subnet: '10.89.5.0/24',
      ipRange: '10.89.5.128/25',
      internal: true,
      mtu: 1400,
    });
    const list = m.conflist(def, true);
    assert.deepEqual(
      list.plugins.map((p) => p.type),
      ['bridge', 'firewall', 'portmap'],
    );
    const bridge = list.plugins[0]!;
    assert.equal(bridge.ipMasq, false);
    assert.equal(bridge.mtu, 1400);
    const ipam = bridge.ipam as { dataDir: string; ranges: Record<string, string>[][]; routes: unknown[] };
    assert.equal(ipam.dataDir, join(root, 'networks', 'ipam'));
    assert.deepEqual(ipam.ranges[0]![0], {
      subnet: '10.89.5.0/24',
      gateway: '10.89.5.1',
      rangeStart: '10.89.5.128',
      rangeEnd: '10.89.5.254',
    });
    assert.deepEqual(ipam.routes, []);
    const rt = {
      containerId: 'c',
      netns: '/x',
      ifname: 'eth0',
      capabilityArgs: { portMappings: [{ hostPort: 1, containerPort: 2, protocol: 'tcp' }] },
    };
    const prev = { ips: [{ address: '10.89.5.130/24' }] };
    const pm = pluginConfig(list, list.plugins[2]!, rt, prev);
    assert.deepEqual(pm.runtimeConfig, { portMappings: rt.capabilityArgs.portMappings });
    assert.equal(pm.capabilities, undefined);
    assert.deepEqual(pm.prevResult, prev);
    assert.equal(pm.name, list.name);
    assert.equal(pluginConfig(list, bridge, rt).runtimeConfig, undefined);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
