/**
 * hull's in-process network set-up for its bridge networks (the `native` backend), doing in a handful of program
 * starts what the CNI chain bridge → host-local → firewall → portmap does in a dozen plugin and iptables
 * processes, as netavark does for podman:
 *
 *  - IPAM: host-local's own lease files (<root>/networks/ipam/<cni name>/<address>, holding "id\r\nifname", and
 *    last_reserved_ip.N for round-robin), created with O_EXCL under the network lock. Sharing host-local's format
 *    lets both backends hand out addresses on one network at the same time without ever giving one twice.
 *  - links: one `ip -batch` in the namespace, run by the program that makes it (`unshare --net=PATH ip -batch -`:
 *    loopback up, the veth pair with its host end sent to the host, addresses, routes) and one in the host (the
 *    bridge with its gateway addresses when it is missing, the host end on it with hairpin mode); sysctls by
 *    writing /proc/sys.
 *  - iptables: one `iptables-restore --noflush` per attach and per detach (ip6tables too on dual-stack networks),
 *    into hull's chains: HULL-FORWARD (forwarding to and from bridges), HULL-POSTROUTING (masquerade, hairpin and
 *    localhost SNAT of published ports), HULL-HOSTPORT-DNAT (published ports, from PREROUTING and OUTPUT for
 *    local destinations) and the isolation chains HULL-ISOLATION-1/2 the CNI backend uses too.
 *
 * Rules of a network (forwarding, masquerade, isolation) are added when its bridge is made and removed when it
 * is retired; rules of an instance (its published ports) are added on attach and removed on detach. What is added
 * is computed before acting and recorded (./manager.ts's attachment record), so a detach, also after a crash,
 * deletes exactly that; when the table no longer holds it (a host restart, a half-done attach), the detach reads
 * the table and deletes what of it is there.
 *
 * This file holds the pure parts (addresses, names, rules, scripts), unit-tested in test/unit/network-native.test.ts;
 * the manager runs them.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PortMapping } from '../common/instance.js';
import { ConflictError } from '../common/errors.js';
import { writeFileAtomic } from '../common/fsutil.js';
import { formatIp, hostRange, parseCidr, parseIp } from './ipv4.js';
import { formatIp6, hostRange6, parseCidr6, parseIp6 } from './ipv6.js';
import type { NetworkDef } from './store.js';

export const ISO1 = 'HULL-ISOLATION-1';
export const ISO2 = 'HULL-ISOLATION-2';
export const FWD = 'HULL-FORWARD';
export const POST = 'HULL-POSTROUTING';
export const DNAT = 'HULL-HOSTPORT-DNAT';

export type Backend = 'cni' | 'native';

/** What one native attachment added, recorded before it acts so that the detach can undo exactly that. */
export interface NativeState {
  /** the host end of the veth pair */
  hostVeth: string;
  /** the instance end, inside the namespace */
  ifname: string;
  mac: string;
  /** "10.88.0.5/16" */
  address: string;
  gateway?: string;
  address6?: string;
  gateway6?: string;
  /** lease files taken (absolute paths) */
  leases: string[];
  /** the instance's own rules (published ports), in `-A CHAIN ...` form, per table */
  rules: TableRules;
}

/** Rules in `-A CHAIN ...` form by family and table. */
export interface TableRules {
  v4: { filter: string[]; nat: string[] };
  v6: { filter: string[]; nat: string[] };
}

export const emptyRules = (): TableRules => ({ v4: { filter: [], nat: [] }, v6: { filter: [], nat: [] } });

// ----- IPAM -----

/** The IPv4 range leases come from: the subnet's hosts, or --ip-range within it (as the CNI backend's conflist). */
export function leaseRange4(def: Pick<NetworkDef, 'subnet' | 'ipRange'>): { first: number; last: number } {
  const s = hostRange(parseCidr(def.subnet));
  if (!def.ipRange) return s;
  const r = hostRange(parseCidr(def.ipRange));
  return { first: Math.max(r.first - 1, s.first), last: Math.min(r.last + 1, s.last) };
}

/**
 * The next free address after `last` (round-robin, as host-local does, so a released address is not handed out
 * again at once), wrapping around; undefined when the range is full.
 */
export function pickAddress<T extends number | bigint>(
  range: { first: T; last: T },
  taken: ReadonlySet<T>,
  last: T | undefined,
  step: (x: T) => T,
): T | undefined {
  const inRange = (x: T) => x >= range.first && x <= range.last;
  let start = last !== undefined && inRange(last) && last !== range.last ? step(last) : range.first;
  const begin = start;
  for (;;) {
    if (!taken.has(start)) return start;
    start = start === range.last ? range.first : step(start);
    if (start === begin) return undefined;
  }
}

/** The leases of a host-local data directory: the addresses (their file names) in it. */
export function leasedAddresses(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => /^[0-9a-f.:]+$/i.test(f) && (f.includes('.') || f.includes(':')));
}

/** Take `address` in the lease directory for the instance; false when someone holds it already. */
export function takeLease(dir: string, address: string, id: string, ifname: string): boolean {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  try {
    writeFileSync(join(dir, address), `${id}\r\n${ifname}`, { flag: 'wx', mode: 0o600 });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

/**
 * Lease an IPv4 (and, on a dual-stack network, an IPv6) address for the instance: `wanted` (--ip) when it is free,
 * else the next free one. Returns the lease files; a ConflictError when the address or range is taken.
 */
export function allocate(
  dir: string,
  def: Pick<NetworkDef, 'name' | 'subnet' | 'gateway' | 'ipRange' | 'ipv6'>,
  id: string,
  ifname: string,
  wanted?: string,
): { address: string; address6?: string; leases: string[] } {
  // a lease of this instance's own is stale (a hull killed after leasing, before recording): it is free again
  const own = (a: string) => {
    try {
      return readFileSync(join(dir, a), 'utf8').split('\r\n')[0] === id;
    } catch {
      return false;
    }
  };
  const stale = leasedAddresses(dir).filter(own);
  releaseLeases(stale.map((a) => join(dir, a)));
  const leased = new Set(leasedAddresses(dir));
  const leases: string[] = [];
  const v4taken = new Set([...leased].filter((a) => !a.includes(':')).map((a) => parseIp(a)));
  v4taken.add(parseIp(def.gateway));
  let v4: number | undefined;
  if (wanted !== undefined) {
    v4 = parseIp(wanted);
    if (v4taken.has(v4))
      throw new ConflictError(
        `address ${wanted} on network ${def.name} is already in use; pick another --ip or leave it out`,
      );
  } else {
    const last = readLast(dir, 0);
    v4 = pickAddress(
      leaseRange4(def),
      v4taken,
      last === undefined ? undefined : safe(() => parseIp(last)),
      (x) => x + 1,
    );
    if (v4 === undefined) throw new ConflictError(`network ${def.name} has no free address left; remove an instance`);
  }
  const a4 = formatIp(v4);
  if (!takeLease(dir, a4, id, ifname))
    throw new ConflictError(
      `address ${a4} on network ${def.name} is already in use; pick another --ip or leave it out`,
    );
  leases.push(join(dir, a4));
  if (wanted === undefined) writeFileAtomic(join(dir, 'last_reserved_ip.0'), a4, 0o600);
  const prefix = parseCidr(def.subnet).prefix;
  if (!def.ipv6) return { address: `${a4}/${prefix}`, leases };
  try {
    const s6 = parseCidr6(def.ipv6.subnet);
    const v6taken = new Set([...leased].filter((a) => a.includes(':')).map((a) => parseIp6(a)));
    v6taken.add(parseIp6(def.ipv6.gateway));
    const last6 = readLast(dir, 1);
    const v6 = pickAddress(
      hostRange6(s6),
      v6taken,
      last6 === undefined ? undefined : safe(() => parseIp6(last6)),
      (x) => x + 1n,
    );
    if (v6 === undefined) throw new ConflictError(`network ${def.name} has no free IPv6 address left`);
    const a6 = formatIp6(v6);
    if (!takeLease(dir, a6, id, ifname)) throw new ConflictError(`IPv6 address ${a6} on network ${def.name} is in use`);
    leases.push(join(dir, a6));
    writeFileAtomic(join(dir, 'last_reserved_ip.1'), a6, 0o600);
    return { address: `${a4}/${prefix}`, address6: `${a6}/${s6.prefix}`, leases };
  } catch (e) {
    releaseLeases(leases);
    throw e;
  }
}

function safe<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}

function readLast(dir: string, index: number): string | undefined {
  try {
    return readFileSync(join(dir, `last_reserved_ip.${index}`), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

export function releaseLeases(files: readonly string[]): void {
  for (const f of files) rmSync(f, { force: true });
}

// ----- names -----

/** The host end of an instance's veth: fixed by instance and interface, so it is known before it exists. */
export function hostVethName(instanceId: string, ifname: string): string {
  return `vh${createHash('sha256').update(`${instanceId}/${ifname}`).digest('hex').slice(0, 11)}`;
}

/** A locally administered MAC derived from the IPv4 address (docker's 02:42:a.b.c.d). */
export function macFor(address: string): string {
  const n = parseIp(address.split('/')[0]!);
  const b = [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
  return ['02', '42', ...b.map((x) => x.toString(16).padStart(2, '0'))].join(':');
}

// ----- rules -----

type NetRules = Pick<NetworkDef, 'bridge' | 'subnet' | 'internal' | 'ipv6'>;

/** The rules a network's bridge needs while it exists, by family and table (`-A CHAIN ...`). */
export function networkRules(def: NetRules): TableRules {
  const b = def.bridge;
  const out = emptyRules();
  const iso = def.internal
    ? [`-A ${ISO1} -i ${b} ! -o ${b} -j DROP`, `-A ${ISO1} ! -i ${b} -o ${b} -j DROP`]
    : [`-A ${ISO1} -i ${b} ! -o ${b} -j ${ISO2}`];
  const fwd = def.internal
    ? [`-A ${FWD} -i ${b} -o ${b} -j ACCEPT`]
    : [`-A ${FWD} -o ${b} -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT`, `-A ${FWD} -i ${b} -j ACCEPT`];
  out.v4.filter.push(...iso, ...fwd);
  if (!def.internal) {
    out.v4.nat.push(
      `-A ${POST} -s ${def.subnet} ! -d 224.0.0.0/4 ! -o ${b} -j MASQUERADE`,
      // published ports reached from the host on 127.0.0.1 (route_localnet is on for the bridge)
      `-A ${POST} -s 127.0.0.0/8 -o ${b} -j MASQUERADE`,
    );
  }
  if (def.ipv6) {
    out.v6.filter.push(...iso, ...fwd);
    if (!def.internal) out.v6.nat.push(`-A ${POST} -s ${def.ipv6.subnet} ! -d ff00::/8 ! -o ${b} -j MASQUERADE`);
  }
  return out;
}

/**
 * The rules of an instance's published ports (IPv4: ports on IPv6 host addresses go through the proxy): DNAT
 * from local destinations, and the hairpin masquerade for instances of the same network reaching them through
 * a host address. Each carries the instance id, so a leftover one is found by it.
 */
export function portRules(
  def: Pick<NetworkDef, 'subnet'>,
  instanceId: string,
  address: string,
  ports: readonly PortMapping[],
): TableRules {
  const out = emptyRules();
  const ip = address.split('/')[0]!;
  const tag = `-m comment --comment "hull:${instanceId}"`;
  for (const p of ports) {
    if (p.hostIp.includes(':')) continue;
    const dst = p.hostIp ? `-d ${p.hostIp}/32 ` : '';
    out.v4.nat.push(
      `-A ${DNAT} ${dst}-p ${p.protocol} -m ${p.protocol} --dport ${p.hostPort} ${tag} -j DNAT --to-destination ${ip}:${p.containerPort}`,
      `-A ${POST} -s ${def.subnet} -d ${ip}/32 -p ${p.protocol} -m ${p.protocol} --dport ${p.containerPort} ${tag} -j MASQUERADE`,
    );
  }
  return out;
}

/** The jumps into hull's chains from the built-in ones, in `-A` form, by table. */
export const JUMPS = {
  filter: [`-A FORWARD -j ${ISO1}`, `-A FORWARD -j ${FWD}`],
  nat: [
    `-A PREROUTING -m addrtype --dst-type LOCAL -j ${DNAT}`,
    `-A OUTPUT -m addrtype --dst-type LOCAL -j ${DNAT}`,
    `-A POSTROUTING -j ${POST}`,
  ],
};

const CHAINS = { filter: [ISO1, ISO2, FWD], nat: [DNAT, POST] };

/** `iptables-save` output → lines by table. */
export function parseSave(text: string): { filter: string[]; nat: string[] } {
  const out: { filter: string[]; nat: string[] } = { filter: [], nat: [] };
  let cur: string[] | undefined;
  for (const l of text.split('\n')) {
    if (l.startsWith('*')) cur = l === '*filter' ? out.filter : l === '*nat' ? out.nat : undefined;
    else if (cur && (l.startsWith(':') || l.startsWith('-A ')))
      cur.push(l.startsWith(':') ? `-N ${l.slice(1).split(' ')[0]}` : l);
  }
  return out;
}

/** Whether an `-A` line names the word `w` (a bridge, an instance id in a comment). */
const names = (line: string, w: string) => line.split(' ').some((t) => t === w || t.replace(/"/g, '') === `hull:${w}`);

/**
 * The changes that make one family's tables hold hull's chains and jumps (the two FORWARD jumps first, in this
 * order) and `add`, after deleting whatever stale rule names one of `stale` (a bridge made anew, an instance
 * attached anew). `current` is what the tables hold now (parseSave).
 */
export function ensureOps(
  current: { filter: string[]; nat: string[] },
  add: { filter: string[]; nat: string[] },
  stale: readonly string[],
): { filter: string[]; nat: string[] } {
  const out: { filter: string[]; nat: string[] } = { filter: [], nat: [] };
  for (const t of ['filter', 'nat'] as const) {
    const cur = current[t];
    const ops = out[t];
    for (const c of CHAINS[t]) if (!cur.includes(`-N ${c}`)) ops.push(`-N ${c}`);
    const ours = new Set([...CHAINS[t]]);
    for (const l of cur) {
      const chain = l.split(' ')[1] ?? '';
      if (l.startsWith('-A ') && ours.has(chain) && stale.some((w) => names(l, w))) ops.push(`-D${l.slice(2)}`);
    }
    if (t === 'filter') {
      if (!cur.includes(`-A ${ISO2} -o hl+ -j DROP`)) ops.push(`-A ${ISO2} -o hl+ -j DROP`);
      const fwd = cur.filter((l) => l.startsWith('-A FORWARD '));
      if (fwd[0] !== JUMPS.filter[0] || fwd[1] !== JUMPS.filter[1]) {
        for (const l of fwd) if (JUMPS.filter.includes(l)) ops.push(`-D${l.slice(2)}`);
        ops.push(`-I FORWARD 1 -j ${FWD}`, `-I FORWARD 1 -j ${ISO1}`);
      }
    } else {
      for (const j of JUMPS.nat) if (!cur.includes(j)) ops.push(j);
    }
    const deleted = new Set(ops.filter((o) => o.startsWith('-D ')).map((o) => `-A${o.slice(2)}`));
    for (const l of add[t]) if (!cur.includes(l) || deleted.has(l)) ops.push(l);
  }
  return out;
}

/** Deletions of `-A` rules. */
export const deletions = (lines: readonly string[]) => lines.map((l) => `-D${l.slice(2)}`);

/**
 * From what the tables hold now, the deletions of those of `rules` that are there, and of any other rule in hull's
 * chains naming one of `words` (used when a fast delete failed: part of it was gone already).
 */
export function presentDeletions(
  current: { filter: string[]; nat: string[] },
  rules: { filter: string[]; nat: string[] },
  words: readonly string[],
): { filter: string[]; nat: string[] } {
  const out: { filter: string[]; nat: string[] } = { filter: [], nat: [] };
  for (const t of ['filter', 'nat'] as const) {
    const ours = new Set(CHAINS[t]);
    const del = new Set<string>();
    for (const l of current[t]) {
      if (!l.startsWith('-A ') || !ours.has(l.split(' ')[1] ?? '')) continue;
      if (rules[t].includes(l) || words.some((w) => names(l, w))) del.add(l);
    }
    out[t] = deletions([...del]);
  }
  return out;
}

/** One iptables-restore --noflush input for several tables (tables without changes are left out). */
export function restoreScript(ops: { filter: string[]; nat: string[] }): string {
  let s = '';
  for (const t of ['filter', 'nat'] as const) if (ops[t].length > 0) s += `*${t}\n${ops[t].join('\n')}\nCOMMIT\n`;
  return s;
}

// ----- links -----

/**
 * The host's `ip -batch` lines of an attach: the bridge when `withBridge`, then the host end of the veth pair
 * (made from inside the namespace, see netnsLinkScript) onto the bridge, hairpin on, up.
 */
export function hostLinkScript(
  def: Pick<NetworkDef, 'bridge' | 'subnet' | 'gateway' | 'mtu' | 'ipv6'>,
  st: Pick<NativeState, 'hostVeth'>,
  withBridge: boolean,
): string[] {
  const b = def.bridge;
  const mtu = def.mtu ? ` mtu ${def.mtu}` : '';
  const out: string[] = [];
  if (withBridge) {
    out.push(
      `link add ${b}${mtu} type bridge`,
      `addr add ${def.gateway}/${parseCidr(def.subnet).prefix} dev ${b}`,
      ...(def.ipv6 ? [`addr add ${def.ipv6.gateway}/${parseCidr6(def.ipv6.subnet).prefix} dev ${b} nodad`] : []),
      `link set dev ${b} up`,
    );
  }
  out.push(
    `link set dev ${st.hostVeth} master ${b}`,
    `link set dev ${st.hostVeth} type bridge_slave hairpin on`,
    `link set dev ${st.hostVeth} up`,
  );
  return out;
}

/**
 * The namespace's `ip -batch` lines: loopback up, the veth pair made here with its host end sent to the host's
 * namespace (`hostNs`, e.g. /proc/PID/ns/net), the addresses, the interface up, the default routes. Run by the
 * same program that makes the namespace (`unshare --net=PATH ip -batch -`) or, for a later network, in it.
 */
export function netnsLinkScript(
  st: Pick<NativeState, 'hostVeth' | 'ifname' | 'mac' | 'address' | 'gateway' | 'address6' | 'gateway6'>,
  opts: { loopback: boolean; defaultRoute: boolean; hostNs: string; mtu?: number },
): string[] {
  const mtu = opts.mtu ? ` mtu ${opts.mtu}` : '';
  return [
    ...(opts.loopback ? ['link set dev lo up'] : []),
    `link add ${st.ifname}${mtu} address ${st.mac} type veth peer name ${st.hostVeth}${mtu} netns ${opts.hostNs}`,
    `addr add ${st.address} dev ${st.ifname}`,
    ...(st.address6 ? [`addr add ${st.address6} dev ${st.ifname} nodad`] : []),
    `link set dev ${st.ifname} up`,
    ...(opts.defaultRoute && st.gateway ? [`route add default via ${st.gateway} dev ${st.ifname}`] : []),
    ...(opts.defaultRoute && st.gateway6 ? [`route add default via ${st.gateway6} dev ${st.ifname}`] : []),
  ];
}
