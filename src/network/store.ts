/**
 * Network definitions: one JSON file per network under <root>/networks/<name>.json, written atomically.
 * A definition is what the user asked for (subnet, gateway, range, internal, MTU) plus what hull derived
 * once (the id, the bridge's name). Everything live (bridges, leases, DNS records) is made from it on
 * demand by ./manager.ts and goes away when the last instance leaves.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConflictError, InvalidArgumentError, NotFoundError } from '../common/errors.js';
import { writeFileAtomic } from '../common/fsutil.js';
import { cidrContains, cidrsOverlap, formatCidr, formatIp, hostRange, parseCidr, parseIp, type Cidr } from './ipv4.js';
import { rootPaths } from '../common/paths.js';
import {
  cidr6Contains,
  cidrs6Overlap,
  formatCidr6,
  formatIp6,
  hostRange6,
  parseCidr6,
  parseIp6,
  type Cidr6,
} from './ipv6.js';

export interface NetworkDef {
  name: string;
  /** 64 hex digits */
  id: string;
  driver: 'bridge';
  /** the host bridge (hl + root hash + network hash: unique per root, at most 15 characters) */
  bridge: string;
  subnet: string;
  gateway: string;
  /** the part of the subnet addresses are leased from, e.g. 10.89.1.128/25 */
  ipRange?: string;
  /** dual-stack (--ipv6): the IPv6 subnet and gateway next to the IPv4 ones */
  ipv6?: { subnet: string; gateway: string };
  /** no outbound route, no masquerading, no forwarding off the bridge */
  internal: boolean;
  mtu?: number;
  /** instances resolve each other's names through the network's DNS server (aardvark-dns) */
  dns: boolean;
  labels: Record<string, string>;
  createdAt: number;
}

export interface CreateNetworkOptions {
  name: string;
  subnet?: string;
  gateway?: string;
  ipRange?: string;
  /** --ipv6: add an IPv6 subnet (subnet6, or a free one of the root's fdXX:XXXX::/48) */
  ipv6?: boolean;
  subnet6?: string;
  gateway6?: string;
  internal?: boolean;
  mtu?: number;
  dns?: boolean;
  labels?: Record<string, string>;
}

/** The network instances join when the user names none (podman's "podman", docker's "bridge"). */
export const DEFAULT_NETWORK = 'hull';
/** Names that select a network mode rather than a network. */
export const RESERVED_NAMES = new Set([
  'none',
  'host',
  'bridge',
  'default',
  'container',
  'private',
  'slirp4netns',
  'pasta',
]);

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;

export function rootHash(root: string): string {
  return createHash('sha256').update(resolve(root)).digest('hex').slice(0, 6);
}

/** Bridge names of a root start with this, so leak checks and isolation rules can find them. */
export function bridgePrefix(root: string): string {
  return `hl${rootHash(root)}`;
}

export class NetworkStore {
  readonly dir: string;
  constructor(readonly root: string) {
    this.dir = rootPaths(root).networks;
  }

  get lockPath(): string {
    return join(this.dir, '.lock.db');
  }

  private file(name: string): string {
    return join(this.dir, `${name}.json`);
  }

  list(): NetworkDef[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir)
      .filter((f) => f.endsWith('.json') && !f.startsWith('.'))
      .map((f) => JSON.parse(readFileSync(join(this.dir, f), 'utf8')) as NetworkDef)
      .sort((a, b) => a.createdAt - b.createdAt);
  }

  find(ref: string): NetworkDef | undefined {
    if (NAME_RE.test(ref) && existsSync(this.file(ref)))
      return JSON.parse(readFileSync(this.file(ref), 'utf8')) as NetworkDef;
    if (/^[0-9a-f]{3,64}$/.test(ref)) {
      const hits = this.list().filter((n) => n.id.startsWith(ref));
      if (hits.length === 1) return hits[0];
      if (hits.length > 1)
        throw new ConflictError(`the id prefix "${ref}" matches more than one network; give more characters`);
    }
    return undefined;
  }

  get(ref: string): NetworkDef {
    const n = this.find(ref);
    if (!n)
      throw new NotFoundError(
        `network "${ref}" not found: hull network ls lists the networks, hull network create ${ref} makes it`,
      );
    return n;
  }

  /**
   * Validate and record a network. Call under the network lock (overlap checks read the other definitions).
   * `hostRoutes`: subnets the host routes already (its own LAN, other roots' bridges), refused for automatic
   * choices and for explicit subnets alike, since a second route to the same addresses breaks both.
   */
  create(opts: CreateNetworkOptions, hostRoutes: { dst: string; dev?: string }[] = []): NetworkDef {
    if (!NAME_RE.test(opts.name)) {
      throw new InvalidArgumentError(
        `invalid network name "${opts.name}": use letters, digits, _ . - (starting with a letter or digit, at most 63)`,
      );
    }
    if (RESERVED_NAMES.has(opts.name))
      throw new InvalidArgumentError(`invalid network name "${opts.name}": it is reserved for --network ${opts.name}`);
    if (existsSync(this.file(opts.name)))
      throw new ConflictError(`network ${opts.name} already exists (hull network inspect ${opts.name})`);
    const others = this.list();
    const routed = hostRoutes
      .filter((r) => r.dst !== 'default' && /\//.test(r.dst))
      .map((r) => ({ cidr: safeCidr(r.dst), dev: r.dev ?? '?' }))
      .filter((r): r is { cidr: Cidr; dev: string } => r.cidr !== null);
    const taken = (c: Cidr): string | undefined => {
      const n = others.find((o) => cidrsOverlap(parseCidr(o.subnet), c));
      if (n) return `network ${n.name} (${n.subnet})`;
      const r = routed.find((x) => cidrsOverlap(x.cidr, c));
      if (r) return `the host's route to ${formatCidr(r.cidr)} on ${r.dev}`;
      return undefined;
    };
    let subnet: Cidr;
    if (opts.subnet !== undefined) {
      subnet = parseCidr(opts.subnet, 'subnet');
      const t = taken(subnet);
      if (t) throw new ConflictError(`subnet ${formatCidr(subnet)} overlaps ${t}; choose another --subnet`);
    } else {
      subnet = this.pickSubnet(opts.name === DEFAULT_NETWORK, taken);
    }
    const range = hostRange(subnet);
    let gateway = range.first;
    if (opts.gateway !== undefined) {
      gateway = parseIp(opts.gateway, 'gateway');
      if (!cidrContains(subnet, gateway) || gateway < range.first || gateway > range.last) {
        throw new InvalidArgumentError(
          `invalid gateway ${opts.gateway}: it is not a host address of subnet ${formatCidr(subnet)}`,
        );
      }
    }
    let ipRange: string | undefined;
    if (opts.ipRange !== undefined) {
      const r = parseCidr(opts.ipRange, 'ip-range');
      if (r.prefix < subnet.prefix || !cidrContains(subnet, r.base)) {
        throw new InvalidArgumentError(
          `invalid --ip-range ${opts.ipRange}: it must lie inside subnet ${formatCidr(subnet)}`,
        );
      }
      ipRange = formatCidr(r);
    }
    const ipv6 = this.pickIpv6(opts, others);
    if (opts.mtu !== undefined && (!Number.isInteger(opts.mtu) || opts.mtu < 576 || opts.mtu > 65535)) {
      throw new InvalidArgumentError(`invalid --mtu ${opts.mtu}: use a number from 576 to 65535`);
    }
    const id = createHash('sha256')
      .update(`${opts.name}\0${Date.now()}\0${randomBytes(16).toString('hex')}`)
      .digest('hex');
    const def: NetworkDef = {
      name: opts.name,
      id,
      driver: 'bridge',
      bridge: `${bridgePrefix(this.root)}${id.slice(0, 6)}`,
      subnet: formatCidr(subnet),
      gateway: formatIp(gateway),
      ...(ipRange ? { ipRange } : {}),
      ...(ipv6 ? { ipv6 } : {}),
      internal: opts.internal ?? false,
      ...(opts.mtu !== undefined ? { mtu: opts.mtu } : {}),
      dns: opts.dns ?? true,
      labels: opts.labels ?? {},
      createdAt: Date.now(),
    };
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeFileAtomic(this.file(def.name), JSON.stringify(def, null, 2) + '\n', 0o600);
    return def;
  }

  /**
   * A free subnet: the default network takes 10.88.0.0/16 (podman's choice) or, when that is taken on this
   * host, the next free /16 from 10.100.0.0; other networks take the first free /24 of 10.89.0.0/16 upward
   * (podman's pool), then of 10.90–10.99.
   */
  private pickSubnet(isDefault: boolean, taken: (c: Cidr) => string | undefined): Cidr {
    const candidates: Cidr[] = [];
    if (isDefault) {
      candidates.push(parseCidr('10.88.0.0/16'));
      for (let b = 100; b < 128; b++) candidates.push({ base: parseIp(`10.${b}.0.0`), prefix: 16 });
    } else {
      for (let b = 89; b < 100; b++)
        for (let c = 0; c < 256; c++) candidates.push({ base: parseIp(`10.${b}.${c}.0`), prefix: 24 });
    }
    const free = candidates.find((c) => taken(c) === undefined);
    if (!free) throw new ConflictError('no free subnet left for a new network; give one with --subnet');
    return free;
  }

  /**
   * The IPv6 half of a dual-stack network (--ipv6): the IPv6 --subnet, or a free /64 of a ULA /48 derived from
   * the root, so two roots never pick the same.
   */
  private pickIpv6(opts: CreateNetworkOptions, others: NetworkDef[]): NetworkDef['ipv6'] | undefined {
    if (!opts.ipv6) {
      if (opts.subnet6 !== undefined || opts.gateway6 !== undefined)
        throw new InvalidArgumentError('an IPv6 --subnet or --gateway needs --ipv6 (a dual-stack network)');
      return undefined;
    }
    if (opts.gateway6 !== undefined && opts.subnet6 === undefined)
      throw new InvalidArgumentError('an IPv6 --gateway needs an IPv6 --subnet');
    const used = others.flatMap((o) => (o.ipv6 ? [parseCidr6(o.ipv6.subnet)] : []));
    let subnet: Cidr6;
    if (opts.subnet6 !== undefined) {
      subnet = parseCidr6(opts.subnet6, 'subnet');
      const clash = others.find((o) => o.ipv6 && cidrs6Overlap(parseCidr6(o.ipv6.subnet), subnet));
      if (clash)
        throw new ConflictError(
          `subnet ${formatCidr6(subnet)} overlaps network ${clash.name} (${clash.ipv6!.subnet}); choose another --subnet`,
        );
    } else {
      const h = rootHash(this.root);
      const base = parseIp6(`fd${h.slice(0, 2)}:${h.slice(2, 6)}::`);
      let found: Cidr6 | undefined;
      for (let i = 1n; i < 0x10000n && !found; i++) {
        const c = { base: base | (i << 64n), prefix: 64 };
        if (!used.some((u) => cidrs6Overlap(u, c))) found = c;
      }
      if (!found) throw new ConflictError('no free IPv6 subnet left for a new network; give one with --subnet');
      subnet = found;
    }
    const range = hostRange6(subnet);
    let gateway = range.first;
    if (opts.gateway6 !== undefined) {
      gateway = parseIp6(opts.gateway6, 'gateway');
      if (!cidr6Contains(subnet, gateway) || gateway < range.first || gateway > range.last)
        throw new InvalidArgumentError(
          `invalid gateway ${opts.gateway6}: it is not a host address of subnet ${formatCidr6(subnet)}`,
        );
    }
    return { subnet: formatCidr6(subnet), gateway: formatIp6(gateway) };
  }

  remove(name: string): void {
    rmSync(this.file(name), { force: true });
  }
}

function safeCidr(text: string): Cidr | null {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(text);
  if (!m) return null;
  const prefix = Number(m[2]);
  const ip = parseIp(m[1]!);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return { base: (ip & mask) >>> 0, prefix };
}
