/**
 * IPv6 address arithmetic for dual-stack networks: parsing (node:net validates, this expands), RFC 5952
 * formatting, CIDR prefixes, containment and overlap. Addresses are 128-bit BigInts.
 */
import { isIPv6 } from 'node:net';
import { InvalidArgumentError } from '../common/errors.js';

export interface Cidr6 {
  base: bigint;
  prefix: number;
}

const ALL = (1n << 128n) - 1n;

export function parseIp6(text: string, what = 'address'): bigint {
  const t = text.trim();
  if (!isIPv6(t) || t.includes('%'))
    throw new InvalidArgumentError(`invalid ${what} "${text}": expected an IPv6 address such as fd00:abcd::2`);
  let s = t;
  // an embedded IPv4 tail (::ffff:1.2.3.4) becomes two groups
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    s = s.slice(0, v4.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = s.split('::');
  const h = head ? head.split(':') : [];
  const tl = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - tl.length).fill('0'), ...tl];
  return groups.reduce((n, g) => (n << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** RFC 5952: lower case, leading zeros dropped, the longest run (two or more) of zero groups as "::". */
export function formatIp6(n: bigint): string {
  const g = Array.from({ length: 8 }, (_, i) => Number((n >> BigInt(112 - 16 * i)) & 0xffffn));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

function mask6(prefix: number): bigint {
  return prefix === 0 ? 0n : (ALL << BigInt(128 - prefix)) & ALL;
}

/** Parse "fd00:abcd::/64". Host bits must be zero; the prefix /48 to /120 (room for a gateway and leases). */
export function parseCidr6(text: string, what = 'subnet'): Cidr6 {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text.trim());
  if (!m) throw new InvalidArgumentError(`invalid ${what} "${text}": expected CIDR notation such as fd00:abcd::/64`);
  const ip = parseIp6(m[1]!, what);
  const prefix = Number(m[2]);
  if (prefix < 48 || prefix > 120)
    throw new InvalidArgumentError(`invalid ${what} "${text}": the IPv6 prefix length must be between /48 and /120`);
  if ((ip & mask6(prefix)) !== ip)
    throw new InvalidArgumentError(
      `invalid ${what} "${text}": host bits are set; did you mean ${formatIp6(ip & mask6(prefix))}/${prefix}?`,
    );
  return { base: ip, prefix };
}

export function formatCidr6(c: Cidr6): string {
  return `${formatIp6(c.base)}/${c.prefix}`;
}

export function cidr6Contains(c: Cidr6, ip: bigint): boolean {
  return (ip & mask6(c.prefix)) === c.base;
}

export function cidrs6Overlap(a: Cidr6, b: Cidr6): boolean {
  const m = mask6(Math.min(a.prefix, b.prefix));
  return (a.base & m) === (b.base & m);
}

/** Usable host addresses: the subnet-router anycast address (all host bits zero) excluded. */
export function hostRange6(c: Cidr6): { first: bigint; last: bigint } {
  return { first: c.base + 1n, last: c.base + (1n << BigInt(128 - c.prefix)) - 1n };
}

/** Whether text looks like an IPv6 address or subnet (has a colon). */
export function isV6Text(text: string): boolean {
  return text.includes(':');
}
