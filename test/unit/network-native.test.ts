// The native network backend's pure parts (src/network/native.ts): IPAM over host-local's lease files, names,
// the rules of networks and published ports, the iptables-restore scripts, the ip batches.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import {
  allocate,
  deletions,
  DNAT,
  ensureOps,
  FWD,
  hostLinkScript,
  hostVethName,
  ISO1,
  ISO2,
  leaseRange4,
  leasedAddresses,
  macFor,
  netnsLinkScript,
  networkRules,
  parseSave,
  pickAddress,
  portRules,
  POST,
  presentDeletions,
  releaseLeases,
  restoreScript,
} from '../../src/network/native.js';
import { parseIp } from '../../src/network/ipv4.js';
import { parseProcRoutes } from '../../src/host/iplink.js';
import { ConflictError } from '../../src/common/errors.js';

const ID = 'a'.repeat(64);
const def = {
  name: 'n1',
  bridge: 'hlabcdef123456',
  subnet: '10.89.1.0/24',
  gateway: '10.89.1.1',
  internal: false,
} as const;

describe('IPAM', () => {
  const tmp = () => mkdtempSync(join(tmpdir(), 'hull-ipam-'));

  test('pickAddress goes round-robin after the last one and wraps; undefined when full', () => {
    const r = { first: 2, last: 5 };
    const inc = (x: number) => x + 1;
    assert.equal(pickAddress(r, new Set(), undefined, inc), 2);
    assert.equal(pickAddress(r, new Set([2]), undefined, inc), 3);
    assert.equal(pickAddress(r, new Set(), 3, inc), 4);
    assert.equal(pickAddress(r, new Set([2]), 5, inc), 3);
    assert.equal(pickAddress(r, new Set(), 99, inc), 2);
    assert.equal(pickAddress(r, new Set([2, 3, 4, 5]), 3, inc), undefined);
    assert.equal(
      pickAddress({ first: 1n, last: 3n }, new Set([1n]), 3n, (x) => x + 1n),
      2n,
    );
  });

  test('leaseRange4: the subnet, or --ip-range within it', () => {
    assert.deepEqual(leaseRange4({ subnet: '10.89.1.0/24' }), {
      first: parseIp('10.89.1.1'),
      last: parseIp('10.89.1.254'),
    });
    assert.deepEqual(leaseRange4({ subnet: '10.89.1.0/24', ipRange: '10.89.1.128/25' }), {
      first: parseIp('10.89.1.128'),
      last: parseIp('10.89.1.254'),
    });
  });

  test('allocate takes host-local lease files: skips the gateway and taken ones, remembers the last, --ip, conflicts', () => {
    const dir = tmp();
    try {
      const a = allocate(dir, def, ID, 'eth0');
      assert.equal(a.address, '10.89.1.2/24');
      assert.equal(readFileSync(join(dir, '10.89.1.2'), 'utf8'), `${ID}\r\neth0`);
      assert.equal(readFileSync(join(dir, 'last_reserved_ip.0'), 'utf8'), '10.89.1.2');
      // a lease someone else (host-local of the CNI backend) holds is skipped
      writeFileSync(join(dir, '10.89.1.3'), 'other\r\neth0');
      const b = allocate(dir, def, 'b'.repeat(64), 'eth0');
      assert.equal(b.address, '10.89.1.4/24');
      // round-robin: a released address is not handed out again at once
      releaseLeases(a.leases);
      assert.equal(allocate(dir, def, 'c'.repeat(64), 'eth0').address, '10.89.1.5/24');
      assert.equal(allocate(dir, def, 'd'.repeat(64), 'eth0', '10.89.1.2').address, '10.89.1.2/24');
      assert.throws(
        () => allocate(dir, def, 'e'.repeat(64), 'eth0', '10.89.1.2'),
        (e: Error) => {
          assert.ok(e instanceof ConflictError);
          assert.match(e.message, /address 10\.89\.1\.2 on network n1 is already in use/);
          return true;
        },
      );
      assert.deepEqual(leasedAddresses(dir).sort(), ['10.89.1.2', '10.89.1.3', '10.89.1.4', '10.89.1.5']);
      // a lease the instance itself left (killed before recording it) does not keep it from its --ip
      assert.equal(allocate(dir, def, 'd'.repeat(64), 'eth0', '10.89.1.2').address, '10.89.1.2/24');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('allocate on a full range: a one-line conflict, nothing taken', () => {
    const dir = tmp();
    try {
      const small = { ...def, subnet: '10.89.1.0/30', gateway: '10.89.1.1' };
      allocate(dir, small, ID, 'eth0');
      assert.throws(() => allocate(dir, small, 'b'.repeat(64), 'eth0'), /no free address left/);
      assert.deepEqual(leasedAddresses(dir), ['10.89.1.2']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('allocate on a dual-stack network leases one address of each family', () => {
    const dir = tmp();
    try {
      const ds = { ...def, ipv6: { subnet: 'fd00:1:2:3::/64', gateway: 'fd00:1:2:3::1' } };
      const a = allocate(dir, ds, ID, 'eth0');
      assert.equal(a.address, '10.89.1.2/24');
      assert.equal(a.address6, 'fd00:1:2:3::2/64');
      assert.equal(allocate(dir, ds, 'b'.repeat(64), 'eth0').address6, 'fd00:1:2:3::3/64');
      assert.equal(a.leases.length, 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

test('names: the host veth is fixed by instance and interface and fits IFNAMSIZ; the MAC follows the address', () => {
  assert.equal(hostVethName(ID, 'eth0'), hostVethName(ID, 'eth0'));
  assert.notEqual(hostVethName(ID, 'eth0'), hostVethName(ID, 'eth1'));
  assert.ok(hostVethName(ID, 'eth0').length <= 15);
  assert.equal(macFor('10.89.1.2/24'), '02:42:0a:59:01:02');
});

describe('rules', () => {
  test('a network: isolation, forwarding, masquerade; internal: no way off the bridge', () => {
    const r = networkRules(def);
    assert.deepEqual(r.v4.filter, [
      `-A ${ISO1} -i ${def.bridge} ! -o ${def.bridge} -j ${ISO2}`,
      `-A ${FWD} -o ${def.bridge} -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT`,
      `-A ${FWD} -i ${def.bridge} -j ACCEPT`,
    ]);
    assert.ok(r.v4.nat.includes(`-A ${POST} -s 10.89.1.0/24 ! -d 224.0.0.0/4 ! -o ${def.bridge} -j MASQUERADE`));
    assert.deepEqual(r.v6, { filter: [], nat: [] });
    const internal = networkRules({ ...def, internal: true });
    assert.deepEqual(internal.v4.nat, []);
    assert.ok(internal.v4.filter.every((l) => !l.includes(ISO2)));
    assert.ok(internal.v4.filter.includes(`-A ${FWD} -i ${def.bridge} -o ${def.bridge} -j ACCEPT`));
    const ds = networkRules({ ...def, ipv6: { subnet: 'fd00::/64', gateway: 'fd00::1' } });
    assert.deepEqual(ds.v6.filter, ds.v4.filter);
    assert.deepEqual(ds.v6.nat, [`-A ${POST} -s fd00::/64 ! -d ff00::/8 ! -o ${def.bridge} -j MASQUERADE`]);
  });

  test('published ports: DNAT (on the host address when given) and hairpin, tagged with the id; IPv6 ones skipped', () => {
    const r = portRules(def, ID, '10.89.1.2/24', [
      { hostIp: '127.0.0.1', hostPort: 18080, containerPort: 80, protocol: 'tcp' },
      { hostIp: '', hostPort: 5353, containerPort: 53, protocol: 'udp' },
      { hostIp: '::1', hostPort: 18081, containerPort: 81, protocol: 'tcp' },
    ]);
    const tag = `-m comment --comment "hull:${ID}"`;
    assert.deepEqual(r.v4.nat, [
      `-A ${DNAT} -d 127.0.0.1/32 -p tcp -m tcp --dport 18080 ${tag} -j DNAT --to-destination 10.89.1.2:80`,
      `-A ${POST} -s 10.89.1.0/24 -d 10.89.1.2/32 -p tcp -m tcp --dport 80 ${tag} -j MASQUERADE`,
      `-A ${DNAT} -p udp -m udp --dport 5353 ${tag} -j DNAT --to-destination 10.89.1.2:53`,
      `-A ${POST} -s 10.89.1.0/24 -d 10.89.1.2/32 -p udp -m udp --dport 53 ${tag} -j MASQUERADE`,
    ]);
    assert.deepEqual(r.v4.filter, []);
  });

  const save = (filter: string[], nat: string[]) =>
    [
      '# Generated by iptables-save',
      '*filter',
      ':INPUT ACCEPT [0:0]',
      ':FORWARD DROP [0:0]',
      ...filter,
      'COMMIT',
      '*nat',
      ':PREROUTING ACCEPT [0:0]',
      ...nat,
      'COMMIT',
      '*mangle',
      '-A PREROUTING -j X',
      'COMMIT',
    ].join('\n');

  test('parseSave keeps filter and nat, chains as -N', () => {
    const p = parseSave(save(['-A FORWARD -j DOCKER'], ['-A PREROUTING -j Y']));
    assert.deepEqual(p.filter, ['-N INPUT', '-N FORWARD', '-A FORWARD -j DOCKER']);
    assert.deepEqual(p.nat, ['-N PREROUTING', '-A PREROUTING -j Y']);
  });

  test('ensureOps on empty tables: chains, jumps (FORWARD first), then the rules; a second pass adds nothing', () => {
    const net = networkRules(def);
    const ops = ensureOps(parseSave(save(['-A FORWARD -j DOCKER-USER'], [])), net.v4, []);
    assert.deepEqual(ops.filter.slice(0, 6), [
      `-N ${ISO1}`,
      `-N ${ISO2}`,
      `-N ${FWD}`,
      `-A ${ISO2} -o hl+ -j DROP`,
      `-I FORWARD 1 -j ${FWD}`,
      `-I FORWARD 1 -j ${ISO1}`,
    ]);
    assert.deepEqual(ops.filter.slice(6), net.v4.filter);
    assert.ok(ops.nat.includes(`-A POSTROUTING -j ${POST}`));
    assert.ok(ops.nat.includes(`-A PREROUTING -m addrtype --dst-type LOCAL -j ${DNAT}`));
    // the tables after applying: nothing more to do
    const after = save(
      [
        `:${ISO1} - [0:0]`,
        `:${ISO2} - [0:0]`,
        `:${FWD} - [0:0]`,
        `-A FORWARD -j ${ISO1}`,
        `-A FORWARD -j ${FWD}`,
        '-A FORWARD -j DOCKER-USER',
        `-A ${ISO2} -o hl+ -j DROP`,
        ...net.v4.filter,
      ],
      [
        `:${DNAT} - [0:0]`,
        `:${POST} - [0:0]`,
        `-A PREROUTING -m addrtype --dst-type LOCAL -j ${DNAT}`,
        `-A OUTPUT -m addrtype --dst-type LOCAL -j ${DNAT}`,
        `-A POSTROUTING -j ${POST}`,
        ...net.v4.nat,
      ],
    );
    assert.deepEqual(ensureOps(parseSave(after), net.v4, []), { filter: [], nat: [] });
  });

  test('ensureOps puts hull first in FORWARD again and deletes stale rules of an instance before adding', () => {
    const stale = `-A ${DNAT} -p tcp -m tcp --dport 1 -m comment --comment "hull:${ID}" -j DNAT --to-destination 10.89.1.9:1`;
    const cur = parseSave(
      save(
        [
          `:${ISO1} - [0:0]`,
          `:${ISO2} - [0:0]`,
          `:${FWD} - [0:0]`,
          '-A FORWARD -j CNI-FORWARD',
          `-A FORWARD -j ${ISO1}`,
        ],
        [`:${DNAT} - [0:0]`, stale],
      ),
    );
    const ops = ensureOps(cur, { filter: [], nat: [] }, [ID]);
    assert.deepEqual(ops.filter.slice(-3), [
      `-D FORWARD -j ${ISO1}`,
      `-I FORWARD 1 -j ${FWD}`,
      `-I FORWARD 1 -j ${ISO1}`,
    ]);
    assert.ok(ops.nat.includes(`-D${stale.slice(2)}`));
  });

  test('deletions and presentDeletions (what is left of a half-gone set, and leftovers naming the id)', () => {
    const r = portRules(def, ID, '10.89.1.2/24', [{ hostIp: '', hostPort: 80, containerPort: 80, protocol: 'tcp' }]);
    assert.deepEqual(
      deletions(r.v4.nat),
      r.v4.nat.map((l) => `-D${l.slice(2)}`),
    );
    const other = `-A ${DNAT} -p tcp -m tcp --dport 9 -m comment --comment "hull:${'b'.repeat(64)}" -j DNAT --to-destination 10.89.1.3:9`;
    const cur = parseSave(save([], [r.v4.nat[0]!, other]));
    assert.deepEqual(presentDeletions(cur, r.v4, [ID]), { filter: [], nat: [`-D${r.v4.nat[0]!.slice(2)}`] });
    const net = networkRules(def);
    const cur2 = parseSave(save([net.v4.filter[0]!, '-A FORWARD -i hlabcdef123456 -j ACCEPT'], []));
    // only hull's chains are touched
    assert.deepEqual(presentDeletions(cur2, { filter: [], nat: [] }, [def.bridge]).filter, [
      `-D${net.v4.filter[0]!.slice(2)}`,
    ]);
  });

  test('restoreScript: one block per changed table', () => {
    assert.equal(restoreScript({ filter: [], nat: [] }), '');
    assert.equal(restoreScript({ filter: ['-N A'], nat: [] }), '*filter\n-N A\nCOMMIT\n');
    assert.equal(restoreScript({ filter: ['-N A'], nat: ['-N B'] }), '*filter\n-N A\nCOMMIT\n*nat\n-N B\nCOMMIT\n');
  });
});

test('ip batches: the bridge only when new; the veth made inside the namespace, its host end sent out; routes on the first', () => {
  const st = { hostVeth: 'vh0123456789a', ifname: 'eth0', mac: '02:42:0a:59:01:02' };
  const withBridge = hostLinkScript({ ...def, mtu: 1400 }, st, true);
  assert.deepEqual(withBridge, [
    `link add ${def.bridge} mtu 1400 type bridge`,
    `addr add 10.89.1.1/24 dev ${def.bridge}`,
    `link set dev ${def.bridge} up`,
    `link set dev vh0123456789a master ${def.bridge}`,
    'link set dev vh0123456789a type bridge_slave hairpin on',
    'link set dev vh0123456789a up',
  ]);
  assert.equal(hostLinkScript(def, st, false)[0], `link set dev vh0123456789a master ${def.bridge}`);
  const ds = hostLinkScript({ ...def, ipv6: { subnet: 'fd00::/64', gateway: 'fd00::1' } }, st, true);
  assert.ok(ds.includes(`addr add fd00::1/64 dev ${def.bridge} nodad`));
  const ns = netnsLinkScript(
    { ...st, address: '10.89.1.2/24', gateway: '10.89.1.1', address6: 'fd00::2/64', gateway6: 'fd00::1' },
    { loopback: true, defaultRoute: true, hostNs: '/proc/1/ns/net', mtu: 1400 },
  );
  assert.deepEqual(ns, [
    'link set dev lo up',
    'link add eth0 mtu 1400 address 02:42:0a:59:01:02 type veth peer name vh0123456789a mtu 1400 netns /proc/1/ns/net',
    'addr add 10.89.1.2/24 dev eth0',
    'addr add fd00::2/64 dev eth0 nodad',
    'link set dev eth0 up',
    'route add default via 10.89.1.1 dev eth0',
    'route add default via fd00::1 dev eth0',
  ]);
  assert.deepEqual(
    netnsLinkScript(
      { ...st, ifname: 'eth1', address: '10.89.2.2/24', gateway: '10.89.2.1' },
      { loopback: false, defaultRoute: false, hostNs: '/proc/1/ns/net' },
    ),
    [
      'link add eth1 address 02:42:0a:59:01:02 type veth peer name vh0123456789a netns /proc/1/ns/net',
      'addr add 10.89.2.2/24 dev eth1',
      'link set dev eth1 up',
    ],
  );
});

test('/proc/net/route parsing', () => {
  const text = [
    'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
    'eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0',
    'hl1\t0000580A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0',
    'eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
  ].join('\n');
  assert.deepEqual(parseProcRoutes(text), [
    { dst: 'default', dev: 'eth0' },
    { dst: '10.88.0.0/16', dev: 'hl1' },
    { dst: '192.0.2.0/24', dev: 'eth0' },
  ]);
});
