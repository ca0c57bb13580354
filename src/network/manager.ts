/**
 * The network driver: joins instances to hull networks and takes them out again. The engine hands it a
 * network namespace path and what the instance asked for; it sets each network up in that namespace with hull's
 * own set-up (./native.ts, the default) or the CNI plugin chain (./cni.ts; HULL_NETWORK_BACKEND=cni), records
 * what it added (the native state, or the ADD result for DEL), publishes ports, writes DNS records
 * (./dns.ts), and returns the attachments (interface, address, gateway, bridge) for the instance's driver.
 * A VM driver later uses the same attachments: it creates a tap inside the namespace and connects it to the
 * CNI veth, so the guest gets the address the same IPAM handed out.
 *
 * What lives on the host exists only while some instance uses a network: the first attachment creates the
 * bridge (the bridge plugin does), the last detachment deletes it, along with hull's isolation rules for it
 * and what the plugins leave behind on DEL (the bridge itself, portmap's CNI-HOSTPORT-* and firewall's
 * CNI-FORWARD/CNI-ADMIN chains once they hold nothing of anyone).
 * Except while a long-lived process holds the root's networks (hold(): `hull daemon` does, as dockerd keeps
 * docker0): then a network's bridge, rules and DNS listener stay when its last instance leaves, so the next
 * instance skips their set-up; every hull process on the root (the CLI too) sees the hold, a file per holder
 * under networks/holders/ naming a live process. The last holder to let go retires what no instance uses.
 *
 * State under <root>/networks:
 *   <name>.json                 definitions (./store.ts)
 *   attachments/<id>/<net>.json per instance and network: the native state (veth, addresses, leases, port rules),
 *                               or the conflist used, the runtime args, the ADD result
 *   ipam/                       leases in host-local's format (its dataDir; the native backend's IPAM uses it too)
 *   backend/<bridge>.native     the native backend's rules of a network (deleted when its bridge is retired)
 *   backend/<bridge>.cni        a CNI attach served this bridge (its retirement cleans up after the plugins)
 *   aardvark/                   aardvark-dns's config dir (one file per network) and pid file
 *   holders/<pid>               processes that keep idle networks up (pid and start time; a dead one's file is ignored)
 *   .lock.db                    serialises all of this between hull processes and tasks (host/lock.ts)
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConflictError, InvalidArgumentError } from '../common/errors.js';
import { writeFileAtomic } from '../common/fsutil.js';
import type { InstanceNetwork, NetworkAttachment, NetworkRequest, PortMapping } from '../common/instance.js';
import { createNetns, netnsMounted, removeNetns } from '../host/netns.js';
import { deleteLink, linkExists, listRoutes } from '../host/iplink.js';
import { applyBatch, restoreTables, saveTables, tableRules } from '../host/iptables.js';
import { runProgram } from '../host/proc.js';
import {
  allocate,
  type Backend,
  deletions,
  emptyRules,
  ensureOps,
  hostLinkScript,
  hostVethName,
  ISO1,
  ISO2,
  macFor,
  type NativeState,
  netnsLinkScript,
  networkRules,
  parseSave,
  portRules,
  presentDeletions,
  releaseLeases,
  restoreScript,
  type TableRules,
} from './native.js';
import { cniAdd, cniCheck, cniDel, CNI_VERSION, type CniConfList, type CniResult, type CniRuntime } from './cni.js';
import { Aardvark } from './dns.js';
import { addressOf, cidrContains, formatIp, hostRange, parseCidr, parseIp } from './ipv4.js';
import { withLock } from '../host/lock.js';
import { trace } from '../common/trace.js';
import { claimPorts, ipv6Available } from './ports.js';
import { proxyAlive, startProxy, stopProxy } from './proxy.js';
import { DEFAULT_NETWORK, NetworkStore, rootHash, type CreateNetworkOptions, type NetworkDef } from './store.js';
import { hullEnv } from '../common/env.js';
import { hostPaths, rootPaths } from '../common/paths.js';
import { processStartTime, sameProcessAlive } from '../host/proc.js';

/**
 * What is cached per instance and network: enough to DEL without the definition (it may be gone). Written
 * before the ADD (without result and attachment), so that a hull killed in the middle of an ADD leaves a record
 * that the next clean-up DELs (with no prevResult, which the spec allows) instead of orphaned rules and leases.
 */
interface AttachmentRecord {
  network: string;
  /** the CNI backend's chain (absent for the native backend's attachments) */
  conflist?: CniConfList;
  /** the native backend's attachment: what it added (./native.ts) */
  native?: NativeState;
  runtime: CniRuntime;
  result?: CniResult;
  attachment?: NetworkAttachment;
  dns: { names: string[]; upstreams: string[] } | null;
  /** the userland proxy of the ports published on IPv6 addresses (./proxy.ts) */
  proxyPid?: number;
}

export interface AttachRequest {
  instanceId: string;
  instanceName: string;
  netnsPath: string;
  networks: NetworkRequest[];
  /** published on the first network */
  ports: PortMapping[];
  /** --dns: upstream servers */
  dns: string[];
  dnsSearch: string[];
  extraHosts: [string, string][];
}

const LOOPBACK: CniConfList = { cniVersion: CNI_VERSION, name: 'hull-loopback', plugins: [{ type: 'loopback' }] };

/**
 * Which set-up joins instances to networks: `native` (./native.ts, hull's own, in a few program starts) or `cni`
 * (the CNI plugin chain). HULL_NETWORK_BACKEND picks; attachments made by either are undone by the same one.
 */
export function networkBackend(): Backend {
  const b = hullEnv('HULL_NETWORK_BACKEND') ?? 'native';
  if (b !== 'cni' && b !== 'native')
    throw new InvalidArgumentError(`invalid HULL_NETWORK_BACKEND "${b}": use native or cni`);
  return b;
}

/** Run `ip -batch` (inside the namespace at `netnsPath` when given). */
async function ipBatch(lines: string[], netnsPath?: string): Promise<void> {
  if (lines.length === 0) return;
  const argv = ['ip', '-batch', '-'];
  await runProgram(
    netnsPath ? 'nsenter' : argv[0]!,
    netnsPath ? [`--net=${netnsPath}`, '--', ...argv] : argv.slice(1),
    {
      input: `${lines.join('\n')}\n`,
      hint: 'hull needs iproute2 and veth/bridge support in the kernel for its networks',
    },
  );
}

/** Write a sysctl of hull's network namespace when it differs. */
function sysctl(path: string, value: string): void {
  const p = `/proc/sys/${path}`;
  try {
    if (readFileSync(p, 'utf8').trim() === value) return;
    writeFileSync(p, value);
  } catch {
    /* a missing knob (IPv6 off) */
  }
}
/** The host-wide network lock (see NetworkManager.lock). */
const hostLock = () => hullEnv('HULL_NETWORK_LOCK') ?? hostPaths.networkLock;

export class NetworkManager {
  readonly store: NetworkStore;
  readonly dns: Aardvark;
  /** the DNS server of --internal networks: it never forwards (see ./dns.ts) */
  readonly dnsInternal: Aardvark;
  /** per instance: the wait for DNS servers its set-up started (see dnsReady) */
  private readonly dnsPending = new Map<string, Promise<void>>();

  constructor(readonly root: string) {
    this.store = new NetworkStore(root);
    this.dns = new Aardvark(join(this.store.dir, 'aardvark'));
    this.dnsInternal = new Aardvark(join(this.store.dir, 'aardvark-internal'), true);
  }

  private get attachDir(): string {
    return rootPaths(this.root).networkAttachments;
  }

  /** The CNI network name: unique per root, so plugin state (leases, rule comments) of two roots never mixes. */
  cniName(def: Pick<NetworkDef, 'name'>): string {
    return `hull-${rootHash(this.root)}-${def.name}`;
  }

  /**
   * Network changes hold two locks: the root's (its definitions, records, DNS files) and a host-wide one, because
   * the chains the plugins and hull share (CNI-HOSTPORT-*, CNI-FORWARD, HULL-ISOLATION-*) are the host's: one
   * root's clean-up must not delete a chain while another root's plugin is adding a rule to it.
   */
  lock<T>(fn: () => Promise<T>): Promise<T> {
    return withLock(hostLock(), () => withLock(this.store.lockPath, fn, { what: `the network lock of ${this.root}` }), {
      what: "hull's host-wide network lock",
    });
  }

  async create(opts: CreateNetworkOptions): Promise<NetworkDef> {
    return this.lock(async () => this.store.create(opts, await listRoutes()));
  }

  /** The default network, created on first use. */
  async ensureDefault(): Promise<NetworkDef> {
    const found = this.store.find(DEFAULT_NETWORK);
    if (found) return found;
    return this.lock(
      async () => this.store.find(DEFAULT_NETWORK) ?? this.store.create({ name: DEFAULT_NETWORK }, await listRoutes()),
    );
  }

  /** The CNI plugin chain of a network: bridge (with host-local IPAM), firewall, and portmap when ports are published. */
  conflist(def: NetworkDef, withPorts: boolean): CniConfList {
    const subnet = parseCidr(def.subnet);
    const range: Record<string, string> = { subnet: def.subnet, gateway: def.gateway };
    if (def.ipRange) {
      const r = hostRange(parseCidr(def.ipRange));
      const s = hostRange(subnet);
      range.rangeStart = formatIp(Math.max(r.first - 1, s.first));
      range.rangeEnd = formatIp(Math.min(r.last + 1, s.last));
    }
    const plugins: CniConfList['plugins'] = [
      {
        type: 'bridge',
        bridge: def.bridge,
        isGateway: true,
        ipMasq: !def.internal,
        hairpinMode: true,
        ...(def.mtu ? { mtu: def.mtu } : {}),
        ipam: {
          type: 'host-local',
          dataDir: join(this.store.dir, 'ipam'),
          ranges: [[range], ...(def.ipv6 ? [[{ subnet: def.ipv6.subnet, gateway: def.ipv6.gateway }]] : [])],
          // an internal network has no default route: only its own subnet is reachable
          routes: def.internal ? [] : [{ dst: '0.0.0.0/0' }, ...(def.ipv6 ? [{ dst: '::/0' }] : [])],
        },
      },
      { type: 'firewall', backend: 'iptables' },
    ];
    if (withPorts) plugins.push({ type: 'portmap', capabilities: { portMappings: true }, snat: true });
    return { cniVersion: CNI_VERSION, name: this.cniName(def), plugins };
  }

  // ----- cache -----

  private recordPath(instanceId: string, network: string): string {
    return join(this.attachDir, instanceId, `${network}.json`);
  }

  records(instanceId: string): AttachmentRecord[] {
    const dir = join(this.attachDir, instanceId);
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as AttachmentRecord)
      .sort((a, b) => a.runtime.ifname.localeCompare(b.runtime.ifname, undefined, { numeric: true }));
  }

  attachments(instanceId: string): NetworkAttachment[] {
    return this.records(instanceId).flatMap((r) => (r.attachment ? [r.attachment] : []));
  }

  /** Whether the instance's published ports answer on IPv6 too (a proxy runs for them). */
  proxied(instanceId: string): boolean {
    return this.records(instanceId).some((r) => !!r.proxyPid);
  }

  /** Instance ids with a live attachment to `network`. */
  users(network: string): string[] {
    if (!existsSync(this.attachDir)) return [];
    return readdirSync(this.attachDir).filter((id) => existsSync(this.recordPath(id, network)));
  }

  // ----- holds: keep idle networks up while a long-lived process (the daemon) runs -----

  private get holdersDir(): string {
    return join(this.store.dir, 'holders');
  }

  /** Whether a live process holds this root's networks (other than `except`, a pid). */
  held(except?: number): boolean {
    if (!existsSync(this.holdersDir)) return false;
    return readdirSync(this.holdersDir).some((f) => {
      const pid = Number(f);
      if (!Number.isInteger(pid) || pid === except) return false;
      let start = '';
      try {
        start = readFileSync(join(this.holdersDir, f), 'utf8').trim();
      } catch {
        return false;
      }
      return sameProcessAlive(pid, start);
    });
  }

  /**
   * Keep idle networks up until release() (or until this process dies: then the hold lapses, and the next
   * holder's release, or the next detachment from that network, retires what is idle). Holders that died are
   * forgotten here.
   */
  async hold(): Promise<{ release: () => Promise<void> }> {
    const me = process.pid;
    await this.lock(async () => {
      mkdirSync(this.holdersDir, { recursive: true });
      for (const f of readdirSync(this.holdersDir)) {
        const pid = Number(f);
        let start = '';
        try {
          start = readFileSync(join(this.holdersDir, f), 'utf8').trim();
        } catch {
          /* gone meanwhile */
        }
        if (pid !== me && !sameProcessAlive(pid, start)) rmSync(join(this.holdersDir, f), { force: true });
      }
      writeFileAtomic(join(this.holdersDir, String(me)), `${processStartTime(me) ?? ''}\n`, 0o644);
    });
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        await this.lock(async () => {
          rmSync(join(this.holdersDir, String(me)), { force: true });
          if (readdirSync(this.holdersDir).length === 0) rmSync(this.holdersDir, { recursive: true, force: true });
          if (this.held()) return;
          // what the hold kept: every network with no instance on it
          await this.retireIfUnused(this.store.list().map((d) => d.name));
          await this.syncDns([]);
        });
      },
    };
  }

  // ----- attach / detach -----

  /**
   * Make the instance's network namespace and join it to its networks. On failure everything made so far is
   * undone and the error is thrown.
   */
  async setup(req: AttachRequest): Promise<InstanceNetwork> {
    return this.lock(async () => {
      try {
        // the native backend makes the namespace with its first network's batch (loopback up included)
        if (networkBackend() === 'cni') {
          await createNetns(req.netnsPath);
          await cniAdd(LOOPBACK, { containerId: req.instanceId, netns: req.netnsPath, ifname: 'lo' });
        } else if (req.networks.length === 0) await createNetns(req.netnsPath, 'link set dev lo up\n');
        const taken = new Set<string>();
        for (const [i, n] of req.networks.entries()) {
          await this.attachOne(req, n, `eth${i}`, i === 0 ? req.ports : [], taken);
        }
        trace('network: attached');
        // the wait for a starting DNS server to listen is left to dnsReady(), before the process starts
        const waits: Promise<void>[] = [];
        await this.syncDns(
          req.networks.map((n) => n.name),
          (p) => waits.push(p),
        );
        if (waits.length > 0)
          this.dnsPending.set(
            req.instanceId,
            Promise.all(waits).then(() => undefined),
          );
        trace('network: DNS updated');
      } catch (e) {
        await this.teardownLocked(req.instanceId, req.netnsPath).catch(() => undefined);
        throw e;
      }
      return this.instanceNetwork(req);
    });
  }

  /** Join one more network while the instance runs (hull network connect). */
  async connect(req: AttachRequest, n: NetworkRequest): Promise<NetworkAttachment> {
    return this.lock(async () => {
      if (existsSync(this.recordPath(req.instanceId, n.name)))
        throw new ConflictError(`instance ${req.instanceName} is already connected to network ${n.name}`);
      const used = new Set(this.records(req.instanceId).map((r) => r.runtime.ifname));
      let i = 0;
      while (used.has(`eth${i}`)) i++;
      const a = await this.attachOne(req, n, `eth${i}`, [], new Set());
      await this.syncDns([n.name]);
      return a;
    });
  }

  /**
   * An instance got a new name (hull rename): its DNS records and attachments answer to the new name instead of
   * the old one on every network it is attached to now (a later attach uses the new name anyway).
   */
  async rename(instanceId: string, oldName: string, newName: string): Promise<void> {
    await this.lock(async () => {
      const swap = (names: string[]) => [...new Set(names.map((n) => (n === oldName ? newName : n)))];
      const changed: string[] = [];
      for (const rec of this.records(instanceId)) {
        const next: AttachmentRecord = {
          ...rec,
          dns: rec.dns ? { ...rec.dns, names: swap(rec.dns.names) } : null,
          ...(rec.attachment ? { attachment: { ...rec.attachment, names: swap(rec.attachment.names) } } : {}),
        };
        writeFileAtomic(this.recordPath(instanceId, rec.network), JSON.stringify(next) + '\n', 0o600);
        changed.push(rec.network);
      }
      if (changed.length > 0) await this.syncDns(changed);
    });
  }

  /** Leave one network while the instance runs (hull network disconnect). */
  async disconnect(instanceId: string, network: string): Promise<void> {
    await this.lock(async () => {
      const rec = this.records(instanceId).find((r) => r.network === network);
      if (!rec) return;
      await this.detachOne(rec, instanceId);
      await this.retireIfUnused([network]);
      await this.syncDns([]);
    });
  }

  private async attachOne(
    req: AttachRequest,
    n: NetworkRequest,
    ifname: string,
    ports: PortMapping[],
    taken: Set<string>,
  ): Promise<NetworkAttachment> {
    const def = this.store.get(n.name);
    if (n.ip !== undefined) {
      const ip = parseIp(n.ip, '--ip');
      const s = hostRange(parseCidr(def.subnet));
      if (!cidrContains(parseCidr(def.subnet), ip) || ip < s.first || ip > s.last) {
        throw new InvalidArgumentError(
          `invalid --ip ${n.ip}: it is outside network ${def.name}'s subnet ${def.subnet}`,
        );
      }
      if (n.ip === def.gateway)
        throw new InvalidArgumentError(`invalid --ip ${n.ip}: it is network ${def.name}'s gateway`);
    }
    if (ports.length > 0 && def.internal) {
      throw new InvalidArgumentError(
        `cannot publish ports from internal network ${def.name}: it has no route to the host's other networks`,
      );
    }
    await this.checkSubnetFree(def);
    const claimed = await claimPorts(ports, taken);
    // IPv4 goes through portmap's DNAT; IPv6 host addresses through the proxy (on a dual-stack network portmap
    // is kept to IPv4 with 0.0.0.0, or its ip6tables DNAT would take [::1] traffic that no namespace can receive)
    const dnat = claimed.filter((p) => !p.hostIp.includes(':'));
    const conflist = this.conflist(def, dnat.length > 0);
    const runtime: CniRuntime = {
      containerId: req.instanceId,
      netns: req.netnsPath,
      ifname,
      ...(n.ip !== undefined ? { args: { IP: n.ip } } : {}),
      ...(dnat.length > 0
        ? {
            capabilityArgs: {
              portMappings: dnat.map((p) => ({
                hostPort: p.hostPort,
                containerPort: p.containerPort,
                protocol: p.protocol,
                ...(p.hostIp ? { hostIP: p.hostIp } : def.ipv6 ? { hostIP: '0.0.0.0' } : {}),
              })),
            },
          }
        : {}),
    };
    const names = [...new Set([req.instanceName, ...(n.aliases ?? []), req.instanceId.slice(0, 12)])];
    const dns = def.dns ? { names, upstreams: req.dns } : null;
    const path = this.recordPath(req.instanceId, def.name);
    if (networkBackend() === 'native')
      return this.attachNative(req, def, n, ifname, claimed, names, dns, ifname === 'eth0');
    mkdirSync(this.markerDir, { recursive: true });
    writeFileSync(join(this.markerDir, `${def.bridge}.cni`), '');
    writeFileAtomic(
      path,
      JSON.stringify({ network: def.name, conflist, runtime, dns } satisfies AttachmentRecord) + '\n',
      0o600,
    );
    let result: CniResult;
    try {
      result = await cniAdd(conflist, runtime);
    } catch (e) {
      // cniAdd has DELeted what it added
      rmSync(path, { force: true });
      if (n.ip !== undefined && /already|not available|reserved/i.test((e as Error).message)) {
        throw new ConflictError(
          `address ${n.ip} on network ${def.name} is already in use; pick another --ip or leave it out`,
        );
      }
      throw e;
    }
    const ipIndex = result.interfaces?.findIndex((x) => x.name === ifname && x.sandbox) ?? -1;
    const mine = (result.ips ?? []).filter((x) => x.interface === ipIndex || x.interface === undefined);
    const ip = mine.find((x) => !x.address.includes(':')) ?? result.ips?.[0];
    const ip6 = mine.find((x) => x.address.includes(':'));
    const attachment: NetworkAttachment = {
      network: def.name,
      interface: ifname,
      address: ip?.address ?? '',
      ...(ip?.gateway ? { gateway: ip.gateway } : {}),
      ...(ip6 ? { address6: ip6.address, ...(ip6.gateway ? { gateway6: ip6.gateway } : {}) } : {}),
      ...(ipIndex >= 0 && result.interfaces?.[ipIndex]?.mac ? { mac: result.interfaces[ipIndex]!.mac } : {}),
      bridge: def.bridge,
      names,
      ports: claimed,
    };
    let proxyPid = 0;
    if (attachment.address && ipv6Available()) {
      try {
        proxyPid = await startProxy(path, claimed, attachment.address.split('/')[0]!);
      } catch (e) {
        rmSync(path, { force: true });
        await cniDel(conflist, runtime, result).catch(() => undefined);
        throw e;
      }
    }
    const record: AttachmentRecord = {
      network: def.name,
      conflist,
      runtime,
      result,
      attachment,
      dns,
      ...(proxyPid ? { proxyPid } : {}),
    };
    writeFileAtomic(path, JSON.stringify(record) + '\n', 0o600);
    await this.ensureIsolation(def);
    return attachment;
  }

  /** Markers of what each bridge's rules came from: <bridge>.native (its rules, JSON), <bridge>.cni. */
  private get markerDir(): string {
    return join(this.store.dir, 'backend');
  }

  /** The native backend's attach (./native.ts): lease, links, rules; undone completely when a step fails. */
  private async attachNative(
    req: AttachRequest,
    def: NetworkDef,
    n: NetworkRequest,
    ifname: string,
    claimed: PortMapping[],
    names: string[],
    dns: AttachmentRecord['dns'],
    first: boolean,
  ): Promise<NetworkAttachment> {
    const path = this.recordPath(req.instanceId, def.name);
    const runtime: CniRuntime = { containerId: req.instanceId, netns: req.netnsPath, ifname };
    const alloc = allocate(join(this.store.dir, 'ipam', this.cniName(def)), def, req.instanceId, ifname, n.ip);
    const st: NativeState = {
      hostVeth: hostVethName(req.instanceId, ifname),
      ifname,
      mac: macFor(alloc.address),
      address: alloc.address,
      gateway: def.gateway,
      ...(alloc.address6 ? { address6: alloc.address6, gateway6: def.ipv6!.gateway } : {}),
      leases: alloc.leases,
      rules: portRules(def, req.instanceId, alloc.address, claimed),
    };
    // recorded before acting: a hull killed from here on leaves a record that the next clean-up undoes
    mkdirSync(join(this.attachDir, req.instanceId), { recursive: true, mode: 0o700 });
    writeFileAtomic(
      path,
      JSON.stringify({ network: def.name, runtime, native: st, dns } satisfies AttachmentRecord) + '\n',
      0o600,
    );
    const attachment: NetworkAttachment = {
      network: def.name,
      interface: ifname,
      address: st.address,
      gateway: def.gateway,
      ...(st.address6 ? { address6: st.address6, gateway6: st.gateway6! } : {}),
      mac: st.mac,
      bridge: def.bridge,
      names,
      ports: claimed,
    };
    let proxyPid = 0;
    try {
      sysctl('net/ipv4/ip_forward', '1');
      if (def.ipv6) sysctl('net/ipv6/conf/all/forwarding', '1');
      const newBridge = !existsSync(`/sys/class/net/${def.bridge}`);
      const links = async () => {
        const inside = netnsLinkScript(st, {
          loopback: first,
          defaultRoute: first && !def.internal,
          hostNs: `/proc/${process.pid}/ns/net`,
          ...(def.mtu ? { mtu: def.mtu } : {}),
        });
        if (netnsMounted(req.netnsPath)) await ipBatch(inside, req.netnsPath);
        else await createNetns(req.netnsPath, `${inside.join('\n')}\n`);
        trace('network: namespace and veth made');
        await ipBatch(hostLinkScript(def, st, newBridge));
        // published ports reached on 127.0.0.1 leave through the bridge with a loopback source until masqueraded
        if (newBridge) sysctl(`net/ipv4/conf/${def.bridge}/route_localnet`, '1');
      };
      // rules name the bridge and address, not the links: both go at once (a failure of either undoes both below)
      const results = await Promise.allSettled([
        links(),
        this.applyNativeRules(def, req.instanceId, st.rules, newBridge),
      ]);
      for (const r of results) if (r.status === 'rejected') throw r.reason;
      trace('network: native attach done');
      if (attachment.address && ipv6Available()) proxyPid = await startProxy(path, claimed, addressOf(st.address));
    } catch (e) {
      await this.detachNative(st, req.instanceId, req.netnsPath).catch(() => undefined);
      rmSync(path, { force: true });
      throw e;
    }
    const record: AttachmentRecord = {
      network: def.name,
      runtime,
      native: st,
      attachment,
      dns,
      ...(proxyPid ? { proxyPid } : {}),
    };
    writeFileAtomic(path, JSON.stringify(record) + '\n', 0o600);
    return attachment;
  }

  /**
   * The iptables side of a native attach. With the bridge in place and its rules recorded, only the instance's own
   * rules are added (one iptables-restore, no read); a new bridge, or a restore the tables refuse (hull's chains
   * were flushed meanwhile), reads the tables once and adds whatever is missing of hull's chains, jumps and the
   * network's rules too. IPv6 (dual-stack networks) the same way in ip6tables.
   */
  private async applyNativeRules(def: NetworkDef, id: string, inst: TableRules, newBridge: boolean): Promise<void> {
    const marker = join(this.markerDir, `${def.bridge}.native`);
    const net = networkRules(def);
    const family = async (v6: boolean) => {
      const mine = v6 ? inst.v6 : inst.v4;
      const netr = v6 ? net.v6 : net.v4;
      if (!newBridge && existsSync(marker) && (await restoreTables(restoreScript(mine), v6))) return;
      const current = parseSave(await saveTables(v6));
      const ops = ensureOps(current, { filter: [...netr.filter, ...mine.filter], nat: [...netr.nat, ...mine.nat] }, [
        id,
      ]);
      if (!(await restoreTables(restoreScript(ops), v6)))
        throw new Error(`${v6 ? 'ip6tables' : 'iptables'}-restore refused the rules of network ${def.name}`);
    };
    // the network's rules are recorded before they are added, so that retiring the bridge deletes them
    mkdirSync(this.markerDir, { recursive: true });
    if (newBridge || !existsSync(marker)) writeFileAtomic(marker, JSON.stringify(net) + '\n', 0o600);
    await Promise.all([family(false), ...(def.ipv6 ? [family(true)] : [])]);
  }

  /** Undo a native attach: the instance's rules, its veth (the namespace end goes with it), its leases. */
  private async detachNative(st: NativeState, id: string, _netns: string): Promise<void> {
    const family = async (v6: boolean) => {
      const mine = v6 ? st.rules.v6 : st.rules.v4;
      if (mine.filter.length + mine.nat.length === 0) return;
      if (await restoreTables(restoreScript({ filter: deletions(mine.filter), nat: deletions(mine.nat) }), v6)) return;
      // part of it is gone already (a host restart, a half-done attach): delete what is there
      const ops = presentDeletions(parseSave(await saveTables(v6)), mine, [id]);
      if (!(await restoreTables(restoreScript(ops), v6)))
        throw new Error(
          `${v6 ? 'ip6tables' : 'iptables'}-restore could not delete the port rules of ${id.slice(0, 12)}`,
        );
    };
    const links = async () => {
      if (existsSync(`/sys/class/net/${st.hostVeth}`))
        await runProgram('ip', ['link', 'del', 'dev', st.hostVeth], { allowFailure: true });
    };
    await Promise.all([family(false), family(true), links()]);
    // only leases still naming this instance (a lease file is the address's allocation)
    releaseLeases(
      st.leases.filter((f) => {
        try {
          return readFileSync(f, 'utf8').startsWith(id);
        } catch {
          return false;
        }
      }),
    );
  }

  /** Delete the rules the native backend added for bridges (those with a .native marker); the markers go too. */
  private async retireNative(bridges: string[]): Promise<void> {
    const rules = emptyRules();
    const marked: string[] = [];
    for (const b of bridges) {
      const m = join(this.markerDir, `${b}.native`);
      if (!existsSync(m)) continue;
      marked.push(b);
      try {
        const r = JSON.parse(readFileSync(m, 'utf8')) as TableRules;
        for (const f of ['v4', 'v6'] as const) for (const t of ['filter', 'nat'] as const) rules[f][t].push(...r[f][t]);
      } catch {
        /* unreadable: the read-and-delete below finds them by the bridge's name */
      }
    }
    if (marked.length === 0) return;
    const family = async (v6: boolean) => {
      const mine = v6 ? rules.v6 : rules.v4;
      if (
        mine.filter.length + mine.nat.length > 0 &&
        (await restoreTables(restoreScript({ filter: deletions(mine.filter), nat: deletions(mine.nat) }), v6))
      )
        return;
      if (v6 && mine.filter.length + mine.nat.length === 0) return;
      const ops = presentDeletions(parseSave(await saveTables(v6)), mine, marked);
      await restoreTables(restoreScript(ops), v6);
    };
    await Promise.all([family(false), family(true)]);
    for (const b of marked) rmSync(join(this.markerDir, `${b}.native`), { force: true });
  }

  private async detachOne(rec: AttachmentRecord, instanceId: string): Promise<void> {
    await stopProxy(rec.proxyPid, this.recordPath(instanceId, rec.network));
    try {
      if (rec.native) await this.detachNative(rec.native, instanceId, rec.runtime.netns);
      else if (rec.conflist) await cniDel(rec.conflist, rec.runtime, rec.result);
    } finally {
      // the record goes even if a plugin failed: a retry could not do better, and the leak check reports what stayed
      rmSync(this.recordPath(instanceId, rec.network), { force: true });
    }
  }

  /**
   * Whether the plugins still see the attachments as they were made (CNI CHECK, where the plugins support it).
   */
  async check(instanceId: string): Promise<boolean> {
    const recs = this.records(instanceId);
    if (recs.length === 0) return false;
    try {
      for (const r of recs) {
        if (!r.attachment) return false;
        if (r.proxyPid && !proxyAlive(r.proxyPid, this.recordPath(instanceId, r.network))) return false;
        if (r.native) {
          if (!existsSync(`/sys/class/net/${r.native.hostVeth}`) || !netnsMounted(r.runtime.netns)) return false;
          continue;
        }
        if (!r.result || !r.conflist) return false;
        await cniCheck(r.conflist, r.runtime, r.result);
      }
      return true;
    } catch {
      return false;
    }
  }

  /**
   * An instance whose namespace is still attached (its supervisor died before the process started, or a hull
   * crashed between attaching and creating): keep the attachments, addresses and ports when they are exactly
   * the ones asked for and CNI CHECK still passes; null otherwise (the caller then tears down and attaches anew).
   */
  async reuse(req: AttachRequest): Promise<InstanceNetwork | null> {
    return this.lock(async () => {
      const recs = this.records(req.instanceId);
      if (recs.length === 0 || !netnsMounted(req.netnsPath)) return null;
      const same =
        recs.length === req.networks.length &&
        req.networks.every((n, i) => recs[i]?.network === n.name && recs[i]?.runtime.netns === req.netnsPath);
      if (!same || !(await this.check(req.instanceId))) return null;
      trace('network: attachments reused after CNI CHECK');
      return this.instanceNetwork(req);
    });
  }

  /** Wait until the DNS servers the instance's set-up started listen (a no-op when none was started). */
  async dnsReady(instanceId: string): Promise<void> {
    const p = this.dnsPending.get(instanceId);
    if (!p) return;
    this.dnsPending.delete(instanceId);
    await p;
    trace('network: DNS listening');
  }

  /** Take the instance off every network and remove its namespace. Idempotent. */
  async teardown(instanceId: string, netnsPath: string): Promise<void> {
    await this.lock(() => this.teardownLocked(instanceId, netnsPath));
  }

  private async teardownLocked(instanceId: string, netnsPath: string): Promise<void> {
    this.dnsPending.delete(instanceId);
    const recs = this.records(instanceId);
    // nothing of the instance's is there (the clean slate before an attach, the second detach of an --rm)
    if (recs.length === 0 && !existsSync(join(this.attachDir, instanceId)) && !existsSync(netnsPath)) return;
    const problems: string[] = [];
    const detach = async () => {
      for (const r of recs.reverse()) {
        try {
          await this.detachOne(r, instanceId);
        } catch (e) {
          problems.push((e as Error).message);
        }
      }
    };
    // the CNI plugins' DEL works inside the namespace; the native backend's detach does not need it
    if (recs.every((r) => r.native)) await Promise.all([detach(), removeNetns(netnsPath)]);
    else {
      await detach();
      await removeNetns(netnsPath);
    }
    rmSync(join(this.attachDir, instanceId), { recursive: true, force: true });
    trace('network: detached');
    await this.retireIfUnused(recs.map((r) => r.network));
    trace('network: unused bridges retired');
    await this.syncDns([]);
    trace('network: DNS updated');
    if (problems.length > 0) throw new Error(`network clean-up of ${instanceId.slice(0, 12)}: ${problems.join('; ')}`);
  }

  // ----- host resources of a network -----

  /**
   * A second route to the same addresses would break both networks. A subnet routed through another device
   * (the host's LAN, another hull root's bridge) is refused; the default network, whose subnet nobody chose,
   * moves to a free one instead.
   */
  private async checkSubnetFree(def: NetworkDef): Promise<void> {
    if (await linkExists(def.bridge)) return;
    const subnet = parseCidr(def.subnet);
    const clash = (await listRoutes()).find((r) => {
      if (r.dst === 'default' || !r.dst.includes('/') || r.dev === def.bridge) return false;
      const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(r.dst);
      if (!m) return false;
      const other = { base: parseIp(m[1]!), prefix: Number(m[2]) };
      const p = Math.min(other.prefix, subnet.prefix);
      const mask = p === 0 ? 0 : (0xffffffff << (32 - p)) >>> 0;
      return (other.base & mask) >>> 0 === (subnet.base & mask) >>> 0;
    });
    if (!clash) return;
    if (def.name === DEFAULT_NETWORK && this.users(def.name).length === 0) {
      this.store.remove(def.name);
      const moved = this.store.create({ name: DEFAULT_NETWORK }, await listRoutes());
      Object.assign(def, moved);
      return;
    }
    throw new ConflictError(
      `network ${def.name}'s subnet ${def.subnet} is already routed on this host (${clash.dst} via ${clash.dev ?? '?'}); remove the network and create it with another --subnet`,
    );
  }

  /**
   * hull's forwarding rules for a network's bridge, with the jump to them kept first in FORWARD (the firewall
   * plugin inserts its own jump at the top too, and its rules accept everything an instance sends). One read of
   * the filter table, one iptables-restore for whatever is missing.
   */
  private async ensureIsolation(def: NetworkDef): Promise<void> {
    await this.ensureIsolationOf(def, false);
    // a dual-stack network's IPv6 traffic is forwarded too: the same rules in ip6tables
    if (def.ipv6) await this.ensureIsolationOf(def, true);
  }

  private async ensureIsolationOf(def: NetworkDef, ipv6: boolean): Promise<void> {
    const filter = await tableRules('filter', ipv6);
    const ops: string[] = [];
    for (const c of [ISO1, ISO2]) if (!filter.includes(`-N ${c}`)) ops.push(`-N ${c}`);
    const want = (chain: string, rule: string[]) => {
      const line = `-A ${chain} ${rule.join(' ')}`;
      if (!filter.includes(line)) ops.push(line);
    };
    want(ISO2, ['-o', 'hl+', '-j', 'DROP']);
    for (const rule of this.isolationRules(def)) want(ISO1, rule);
    const forward = filter.filter((l) => l.startsWith('-A FORWARD '));
    if (forward[0] !== `-A FORWARD -j ${ISO1}`) {
      for (const l of forward.filter((x) => x === `-A FORWARD -j ${ISO1}`)) ops.push(`-D${l.slice(2)}`);
      ops.push(`-I FORWARD 1 -j ${ISO1}`);
    }
    await applyBatch('filter', ops, ipv6);
  }

  private isolationRules(def: Pick<NetworkDef, 'bridge' | 'internal'>): string[][] {
    const b = def.bridge;
    return def.internal
      ? [
          ['-i', b, '!', '-o', b, '-j', 'DROP'],
          ['!', '-i', b, '-o', b, '-j', 'DROP'],
        ]
      : [['-i', b, '!', '-o', b, '-j', ISO2]];
  }

  /** For each network no instance uses any more: delete its bridge and rules, then the shared chains that became empty. */
  private async retireIfUnused(networks: string[]): Promise<void> {
    if (this.held()) return;
    const retire: Pick<NetworkDef, 'bridge'>[] = [];
    for (const name of new Set(networks)) {
      if (this.users(name).length > 0) continue;
      const def = this.store.find(name);
      if (def) retire.push(def);
      rmSync(join(this.store.dir, 'ipam', def ? this.cniName(def) : `hull-${rootHash(this.root)}-${name}`), {
        recursive: true,
        force: true,
      });
    }
    if (retire.length > 0) await this.retire(retire);
  }

  /**
   * Delete bridges with hull's rules for them, and clean up the chains the plugins share between all their users
   * and leave behind on DEL: portmap's CNI-HOSTPORT-* chains once no DNAT rule is left in them, the firewall
   * plugin's CNI-FORWARD/CNI-ADMIN once they hold nothing but each other (another CNI user's rules keep them),
   * and hull's isolation chains once no hull bridge is left. Both tables are read once and changed in one
   * iptables-restore each: a run per rule would cost a quarter of a second per `hull run --rm`.
   */
  async retire(bridges: Pick<NetworkDef, 'bridge'>[]): Promise<void> {
    const names = bridges.map((b) => b.bridge);
    // the CNI backend's clean-up for bridges it served (or of unknown history: made before the markers existed)
    const cni = bridges.filter(
      (b) =>
        existsSync(join(this.markerDir, `${b.bridge}.cni`)) || !existsSync(join(this.markerDir, `${b.bridge}.native`)),
    );
    const legacy = async () => {
      if (cni.length === 0) return;
      // IPv6 only when some chain of hull's or the plugins' is there (dual-stack networks put them there)
      const v6 = (await tableRules('filter', true)).some((l) => / (HULL-ISOLATION-1|CNI-FORWARD)$/.test(l));
      await Promise.all([this.retireRules(cni, false), ...(v6 ? [this.retireRules(cni, true)] : [])]);
    };
    await Promise.all([this.retireNative(names), legacy(), ...names.map((b) => deleteLink(b))]);
    for (const b of names) rmSync(join(this.markerDir, `${b}.cni`), { force: true });
  }

  private async retireRules(bridges: Pick<NetworkDef, 'bridge'>[], ipv6: boolean): Promise<void> {
    const [filter, nat] = await Promise.all([tableRules('filter', ipv6), tableRules('nat', ipv6)]);
    const rulesOf = (lines: string[], chain: string) => lines.filter((l) => l.startsWith(`-A ${chain} `));
    const exists = (lines: string[], chain: string) => lines.includes(`-N ${chain}`);
    const jumpsTo = (lines: string[], chains: string[]) =>
      lines.filter((l) => l.startsWith('-A ') && chains.some((c) => l.endsWith(` -j ${c}`) || l.includes(` -j ${c} `)));
    const del = (l: string) => `-D${l.slice(2)}`;
    const drop = (lines: string[], chains: string[]) => [
      ...jumpsTo(lines, chains).map(del),
      ...chains.filter((c) => exists(lines, c)).flatMap((c) => [`-F ${c}`, `-X ${c}`]),
    ];

    const f: string[] = [];
    const mine = (l: string) => bridges.some((b) => l.includes(` ${b.bridge} `) || l.endsWith(` ${b.bridge}`));
    const iso1 = rulesOf(filter, ISO1);
    const gone = iso1.filter(mine);
    if (exists(filter, ISO1) && gone.length === iso1.length) f.push(...drop(filter, [ISO1, ISO2]));
    else f.push(...gone.map(del));
    const fwd = rulesOf(filter, 'CNI-FORWARD');
    if (
      exists(filter, 'CNI-FORWARD') &&
      fwd.every((l) => / -j CNI-ADMIN$/.test(l)) &&
      rulesOf(filter, 'CNI-ADMIN').length === 0
    ) {
      f.push(...drop(filter, ['CNI-FORWARD', 'CNI-ADMIN']));
    }
    const n: string[] = [];
    if (exists(nat, 'CNI-HOSTPORT-DNAT') && rulesOf(nat, 'CNI-HOSTPORT-DNAT').length === 0) {
      n.push(...drop(nat, ['CNI-HOSTPORT-DNAT', 'CNI-HOSTPORT-SNAT', 'CNI-HOSTPORT-MASQ', 'CNI-HOSTPORT-SETMARK']));
    }
    await Promise.all([applyBatch('filter', f, ipv6), applyBatch('nat', n, ipv6)]);
  }

  // ----- DNS -----

  /** Rewrite the aardvark files of these networks from the attachment records, then start/reload/stop aardvark. */
  private async syncDns(networks: string[], deferWait?: (listening: Promise<void>) => void): Promise<void> {
    const all = new Set(networks);
    const servers = [this.dns, this.dnsInternal];
    // networks whose file exists but whose records may have changed (teardown passes [])
    for (const d of servers)
      if (existsSync(d.dir))
        for (const f of readdirSync(d.dir)) if (f !== 'aardvark.pid' && !f.startsWith('.')) all.add(f);
    const waitFor = new Map<Aardvark, string>();
    // while held, a network's DNS server keeps listening on its gateway with no records (as its bridge stays)
    const keep = this.held();
    for (const name of all) {
      const def = this.store.find(name);
      const records =
        !def || !def.dns
          ? []
          : this.users(name).flatMap((id) => {
              const rec = this.records(id).find((r) => r.network === name);
              if (!rec?.dns || !rec.attachment) return [];
              return [
                {
                  id,
                  ipv4: [rec.attachment.address.split('/')[0]!],
                  ipv6: rec.attachment.address6 ? [rec.attachment.address6.split('/')[0]!] : [],
                  names: rec.dns.names,
                  upstreams: rec.dns.upstreams,
                },
              ];
            });
      const server = def?.internal ? this.dnsInternal : this.dns;
      for (const d of servers)
        d.write(name, def?.gateway ?? '', d === server ? records : [], keep && d === server && !!def?.dns);
      if (records.length > 0 && networks.includes(name) && !waitFor.has(server)) waitFor.set(server, def!.gateway);
    }
    for (const d of servers) await d.sync(waitFor.get(d), deferWait);
  }

  private instanceNetwork(req: AttachRequest): InstanceNetwork {
    const attachments = this.attachments(req.instanceId);
    const dnsGateways = req.networks
      .map((n) => this.store.find(n.name))
      .filter((d): d is NetworkDef => !!d && d.dns)
      .map((d) => d.gateway);
    return {
      netnsPath: req.netnsPath,
      attachments,
      // the networks' DNS servers answer for instances and forward the rest (to --dns when given); without
      // one, --dns goes straight into resolv.conf
      nameservers: dnsGateways.length > 0 ? [...new Set(dnsGateways)] : req.dns,
      searches: req.dnsSearch,
      extraHosts: req.extraHosts,
    };
  }

  /** Remove a network's definition (the caller checked that no instance refers to it). */
  async remove(name: string): Promise<void> {
    await this.lock(async () => {
      const def = this.store.get(name);
      if (this.users(name).length > 0)
        throw new ConflictError(
          `network ${name} is in use by ${this.users(name).length} instance(s); remove them or hull network disconnect first`,
        );
      await this.retire([def]);
      rmSync(join(this.store.dir, 'ipam', this.cniName(def)), { recursive: true, force: true });
      this.store.remove(name);
      for (const d of [this.dns, this.dnsInternal]) {
        d.write(name, '', []);
        await d.sync();
      }
    });
  }
}
