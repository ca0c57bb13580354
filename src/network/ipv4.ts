/**
 * IPv4 address arithmetic for network definitions: parsing dotted quads and CIDR prefixes,
 * containment and overlap. Every network has an IPv4 subnet; a dual-stack one (--ipv6) has an IPv6 one
 * too (./ipv6.ts). Where only IPv4 fits (--ip, a network's first --subnet) IPv6 is refused clearly.
 */
import { InvalidArgumentError } from '../common/errors.js';

export interface Cidr {
  /** network address as an unsigned 32-bit number */
  base: number;
  prefix: number;
}

export function parseIp(text: string, what = 'address'): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text.trim());
  if (!m) {
    if (text.includes(':'))
      throw new InvalidArgumentError(
        `invalid ${what} "${text}": an IPv4 address is expected here (IPv6 addresses come from a network created with --ipv6)`,
      );
    throw new InvalidArgumentError(`invalid ${what} "${text}": expected an IPv4 address such as 10.89.1.5`);
  }
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) throw new InvalidArgumentError(`invalid ${what} "${text}": each part must be 0-255`);
  return ((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]!;
}

export function formatIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parse "10.89.1.0/24". Host bits must be zero (as podman and docker insist), so typos are caught. */
export function parseCidr(text: string, what = 'subnet'): Cidr {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(text.trim());
  if (!m) throw new InvalidArgumentError(`invalid ${what} "${text}": expected CIDR notation such as 10.89.1.0/24`);
  const ip = parseIp(m[1]!, what);
  const prefix = Number(m[2]);
  if (prefix > 30 || prefix < 8)
    throw new InvalidArgumentError(`invalid ${what} "${text}": the prefix length must be between /8 and /30`);
  if ((ip & mask(prefix)) >>> 0 !== ip) {
    throw new InvalidArgumentError(
      `invalid ${what} "${text}": host bits are set; did you mean ${formatIp((ip & mask(prefix)) >>> 0)}/${prefix}?`,
    );
  }
  return { base: ip, prefix };
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.base)}/${c.prefix}`;
}

export function cidrContains(c: Cidr, ip: number): boolean {
  return (ip & mask(c.prefix)) >>> 0 === c.base;
}

/** The usable host range of a subnet (network and broadcast addresses excluded). */
export function hostRange(c: Cidr): { first: number; last: number } {
  const size = 2 ** (32 - c.prefix);
  return { first: c.base + 1, last: c.base + size - 2 };
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return (a.base & mask(p)) >>> 0 === (b.base & mask(p)) >>> 0;
}

/** "10.89.1.5/24" → 10.89.1.5 */
export function addressOf(cidrAddress: string): string {
  return cidrAddress.split('/')[0]!;
}
