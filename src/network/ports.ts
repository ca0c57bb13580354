/**
 * Published ports: parsing docker's -p syntax, and making sure a host port is free before portmap's DNAT
 * rules claim it. portmap only writes iptables rules; it never binds the port, so on its own it would
 * silently shadow a host service on the same port or collide with another instance. hull therefore
 * refuses a host port that (a) a host process has bound (a test bind on the address tells), or (b) a DNAT
 * rule of any CNI portmap user on this host already forwards (read from iptables' nat table).
 *
 * IPv6: a mapping on all addresses also answers on the host's IPv6 addresses, an [ADDRESS] mapping only there;
 * both through hull's userland proxy (./proxy.ts), since DNAT cannot carry [::1] into a namespace.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { ConflictError, InvalidArgumentError } from '../common/errors.js';
import type { PortMapping } from '../common/instance.js';
import { tableRules } from '../host/iptables.js';
import { parseIp } from './ipv4.js';
import { formatIp6, parseIp6 } from './ipv6.js';

function port(text: string, what: string, allowZero = false): number {
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError(`invalid ${what} "${text}": expected a port number`);
  const n = Number(text);
  if (n > 65535 || (n === 0 && !allowZero))
    throw new InvalidArgumentError(`invalid ${what} "${text}": ports are 1-65535`);
  return n;
}

function range(text: string, what: string): number[] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text);
  if (!m) throw new InvalidArgumentError(`invalid ${what} "${text}": expected a port or a range like 8000-8010`);
  const a = port(m[1]!, what);
  const b = m[2] !== undefined ? port(m[2], what) : a;
  if (b < a) throw new InvalidArgumentError(`invalid ${what} "${text}": the range is reversed`);
  if (b - a >= 1024) throw new InvalidArgumentError(`invalid ${what} "${text}": at most 1024 ports per range`);
  return Array.from({ length: b - a + 1 }, (_, i) => a + i);
}

/**
 * One -p value: [IP:][HOST:]CTR[/tcp|udp], ports or ranges (HOST and CTR ranges of equal length; a
 * single HOST with a CTR range is refused). No HOST (or HOST empty, "IP::CTR") means a random free port.
 */
export function parsePublish(spec: string): PortMapping[] {
  const bad = (why: string) =>
    new InvalidArgumentError(
      `invalid -p "${spec}": ${why}; expected [IP:][HOST:]CONTAINER[/tcp|udp], e.g. 127.0.0.1:8080:80`,
    );
  let rest = spec;
  let protocol: 'tcp' | 'udp' = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    const p = rest.slice(slash + 1);
    if (p !== 'tcp' && p !== 'udp') throw bad(`unknown protocol "${p}" (tcp or udp)`);
    protocol = p;
    rest = rest.slice(0, slash);
  }
  let hostIp = '';
  if (rest.startsWith('[')) {
    // [IPv6]:HOST:CTR (docker's syntax for an IPv6 host address); [::] means every IPv6 address
    const close = rest.indexOf(']');
    if (close < 0 || rest[close + 1] !== ':') throw bad('an IPv6 host address is written [ADDRESS]:HOST:CONTAINER');
    hostIp = formatIp6(parseIp6(rest.slice(1, close), 'host address in -p'));
    rest = rest.slice(close + 2);
    if (rest.split(':').length !== 2) throw bad('expected [ADDRESS]:HOST:CONTAINER');
  }
  const parts = rest.split(':');
  if (parts.length > 3) throw bad('too many colons');
  if (parts.length === 3 && hostIp === '') {
    hostIp = parts.shift()!;
    if (hostIp !== '') parseIp(hostIp, 'host address in -p');
    if (hostIp === '0.0.0.0') hostIp = '';
  }
  const ctr = range(parts.pop()!, 'container port');
  const hostText = parts.pop() ?? '';
  const host = hostText === '' ? ctr.map(() => 0) : range(hostText, 'host port');
  if (host.length !== ctr.length) throw bad('the host and container port ranges differ in length');
  return ctr.map((c, i) => ({ hostIp, hostPort: host[i]!, containerPort: c, protocol }));
}

/** "80/tcp" keys of an image's ExposedPorts → random-host-port mappings (-P). */
export function exposedToMappings(exposed: Record<string, object> | undefined): PortMapping[] {
  return Object.keys(exposed ?? {}).flatMap((k) => {
    const [p, proto = 'tcp'] = k.split('/');
    if (!/^\d+$/.test(p ?? '') || (proto !== 'tcp' && proto !== 'udp')) return [];
    return [{ hostIp: '', hostPort: 0, containerPort: Number(p), protocol: proto }];
  });
}

/** Host ports that DNAT rules (portmap's of any CNI user on this host, hull's native backend's) forward now, as "proto/port". */
export async function forwardedPorts(): Promise<Set<string>> {
  const out = new Set<string>();
  for (const l of await tableRules('nat')) {
    if (!l.startsWith('-A CNI-DN-') && !l.startsWith('-A HULL-HOSTPORT-DNAT ')) continue;
    const proto = /-p (tcp|udp)/.exec(l)?.[1];
    const dport = /--dport (\d+)/.exec(l)?.[1];
    if (proto && dport) out.add(`${proto}/${dport}`);
  }
  return out;
}

/** Bind the port on the address for a moment; resolves with the bound port (useful for port 0), or rejects. */
function tryBind(hostIp: string, hostPort: number, protocol: 'tcp' | 'udp'): Promise<number> {
  const address = hostIp || '0.0.0.0';
  const v6 = address.includes(':');
  return new Promise((resolve, reject) => {
    if (protocol === 'udp') {
      const s = createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: true });
      s.once('error', (e) => {
        s.close();
        reject(e);
      });
      s.bind({ port: hostPort, address, exclusive: true }, () => {
        const p = s.address().port;
        s.close(() => resolve(p));
      });
      return;
    }
    const srv = createServer();
    srv.once('error', reject);
    srv.listen({ port: hostPort, host: address, exclusive: true, ipv6Only: v6 }, () => {
      const a = srv.address();
      const p = typeof a === 'object' && a ? a.port : hostPort;
      srv.close(() => resolve(p));
    });
  });
}

/**
 * Bind what the mapping will use: its address, and for a mapping on all addresses both 0.0.0.0 (portmap's DNAT)
 * and [::] (the IPv6 proxy, ./proxy.ts). Resolves with the port (the one picked for port 0).
 */
async function tryBindAll(hostIp: string, hostPort: number, protocol: 'tcp' | 'udp'): Promise<number> {
  const p = await tryBind(hostIp, hostPort, protocol);
  if (hostIp === '' && ipv6Available()) await tryBind('::', p, protocol);
  return p;
}

let v6: boolean | undefined;
/** Whether the host has IPv6 at all (a [::] listener needs it); a host without it publishes on IPv4 only. */
export function ipv6Available(): boolean {
  if (v6 === undefined) {
    try {
      v6 = readFileSync('/proc/sys/net/ipv6/conf/lo/disable_ipv6', 'utf8').trim() === '0';
    } catch {
      v6 = false;
    }
  }
  return v6;
}

/**
 * Resolve random host ports and check fixed ones. `taken` holds ports already claimed in this round (several
 * -p values, several instances under one lock). Throws ConflictError naming the port and who holds it.
 */
export async function claimPorts(mappings: PortMapping[], taken = new Set<string>()): Promise<PortMapping[]> {
  if (mappings.length === 0) return [];
  const forwarded = await forwardedPorts();
  // what a mapping occupies: "proto/port" for IPv4 (DNAT rules), "proto/port/6" for IPv6 (the proxy)
  const keys = (m: PortMapping, port: number) =>
    m.hostIp === ''
      ? [`${m.protocol}/${port}`, `${m.protocol}/${port}/6`]
      : m.hostIp.includes(':')
        ? [`${m.protocol}/${port}/6`]
        : [`${m.protocol}/${port}`];
  const out: PortMapping[] = [];
  for (const m of mappings) {
    if (m.hostPort === 0) {
      let found = 0;
      for (let i = 0; i < 50 && !found; i++) {
        const p = await tryBindAll(m.hostIp, 0, m.protocol).catch(() => 0);
        if (p && !keys(m, p).some((k) => forwarded.has(k) || taken.has(k))) found = p;
      }
      if (!found)
        throw new ConflictError(`no free host port found for container port ${m.containerPort}/${m.protocol}`);
      out.push({ ...m, hostPort: found });
    } else {
      const host = m.hostIp.includes(':') ? `[${m.hostIp}]` : m.hostIp || '0.0.0.0';
      const where = `${host}:${m.hostPort}/${m.protocol}`;
      if (keys(m, m.hostPort).some((k) => taken.has(k)))
        throw new ConflictError(`host port ${where} is published twice; give each -p its own host port`);
      if (keys(m, m.hostPort).some((k) => forwarded.has(k)))
        throw new ConflictError(
          `host port ${where} is already published by another instance (hull port lists them); choose another host port`,
        );
      try {
        await tryBindAll(m.hostIp, m.hostPort, m.protocol);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EADDRNOTAVAIL')
          throw new InvalidArgumentError(`cannot publish on ${m.hostIp}: no interface of this host has that address`);
        throw new ConflictError(
          `host port ${where} is already in use by a process on this host (${code ?? (e as Error).message}); choose another host port`,
        );
      }
      out.push(m);
    }
    for (const k of keys(m, out[out.length - 1]!.hostPort)) taken.add(k);
  }
  return out;
}
