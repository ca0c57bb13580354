/**
 * The engine's side of networks: the one place that composes the network driver (src/network) with the
 * instance drivers. An instance with network mode 'bridge' gets a network namespace of its own under
 * <root>/netns/<id>, joined to its networks, whenever its process is about to exist (create, and every start
 * of an exited instance, since start re-creates), and loses it whenever the process is gone (exit clean-up,
 * remove, host restart). So a stopped instance holds no address and no published port, as with docker, and
 * a restart policy or `hull start` simply attaches again (a static --ip comes back the same).
 */
import { ConflictError, InvalidArgumentError } from '../common/errors.js';
import type { InstanceContext, NetworkRequest } from '../common/instance.js';
import { NetworkManager } from '../network/manager.js';
import { DEFAULT_NETWORK, RESERVED_NAMES } from '../network/store.js';
import { HOST_GATEWAY } from './config.js';
import { parseIp } from '../network/ipv4.js';
import type { Engine } from './engine.js';
import type { InstanceRecord } from './store.js';
import { saveInstanceFile } from './instance-file.js';
import { instancePaths, rootPaths } from '../common/paths.js';
import { updateHostsFile } from '../host/etcfiles.js';
import { prepareHostSide } from './namespaces.js';

export function netnsPath(engine: Engine, id: string): string {
  return rootPaths(engine.root).netnsPath(id);
}

export function usesNetworks(rec: Pick<InstanceRecord, 'config'>): boolean {
  return rec.config.network === 'bridge' && (rec.config.networks?.length ?? 0) > 0;
}

/**
 * Resolve the networks an instance asks for into definitions that exist (the default one is created on first
 * use). Unknown networks fail here, before anything is made.
 */
export async function resolveNetworkRequests(engine: Engine, reqs: NetworkRequest[]): Promise<NetworkRequest[]> {
  const out: NetworkRequest[] = [];
  for (const r of reqs) {
    const name = r.name === 'bridge' || r.name === 'default' ? DEFAULT_NETWORK : r.name;
    if (RESERVED_NAMES.has(name))
      throw new InvalidArgumentError(`--network ${r.name} cannot be combined with other networks`);
    const def = name === DEFAULT_NETWORK ? await engine.networks.ensureDefault() : engine.networks.store.get(name);
    if (out.some((o) => o.name === def.name)) throw new InvalidArgumentError(`network ${def.name} is given twice`);
    if (r.ip !== undefined) parseIp(r.ip, '--ip');
    out.push({ ...r, name: def.name });
  }
  return out;
}

/** Attach the instance's networks into a fresh namespace and put the result on the context for the driver. */
export async function attachInstance(engine: Engine, rec: InstanceRecord, ctx: InstanceContext): Promise<void> {
  // the namespaces of instances it joins (container:X) and its -v host directories (namespaces.ts)
  prepareHostSide(engine, rec, ctx);
  if (!usesNetworks(rec)) return;
  const c = rec.config;
  const path = netnsPath(engine, rec.id);
  const req = {
    instanceId: rec.id,
    instanceName: rec.name,
    netnsPath: path,
    networks: c.networks ?? [],
    ports: c.ports ?? [],
    dns: c.dns ?? [],
    dnsSearch: c.dnsSearch ?? [],
    extraHosts: await resolveExtraHosts(engine, c.extraHosts ?? []),
  };
  // still attached (a supervisor or hull died before the process started): keep it if CNI CHECK agrees
  const kept = await engine.networks.reuse(req);
  if (kept) {
    ctx.network = kept;
    return;
  }
  // otherwise anything left over (a crash, a simulated host restart) goes first: start from a clean slate
  await engine.networks.teardown(rec.id, path);
  ctx.network = await engine.networks.setup(req);
}

/**
 * --add-host entries as [name, ip]; host-gateway becomes the host's address on the default network (docker's
 * default --host-gateway-ip: the default bridge's gateway), whichever networks the instance joins.
 */
async function resolveExtraHosts(engine: Engine, hosts: string[]): Promise<[string, string][]> {
  let gateway: string | undefined;
  const out: [string, string][] = [];
  for (const h of hosts) {
    const i = h.lastIndexOf(':');
    let ip = h.slice(i + 1);
    if (ip === HOST_GATEWAY) ip = gateway ??= (await engine.networks.ensureDefault()).gateway;
    out.push([h.slice(0, i), ip]);
  }
  return out;
}

/** Take the instance off its networks and drop its namespace. Idempotent; a no-op without networks. */
export async function detachInstance(engine: Engine, rec: Pick<InstanceRecord, 'id' | 'config'>): Promise<void> {
  if (rec.config.network !== 'bridge') return;
  await engine.networks.teardown(rec.id, netnsPath(engine, rec.id));
}

/**
 * The exit clean-up's detach: only while the instance is still stopped from the run that ended. A `hull start`
 * in another process may have come in between and made its own namespace at the same path; that one is not this
 * exit's to remove (start's attach takes over, or tears down, what the old run left). The check and the teardown
 * hold the network lock, which start's attach also takes.
 */
export async function detachAfterExit(
  engine: Engine,
  done: Pick<InstanceRecord, 'id' | 'config' | 'startedAt'>,
): Promise<void> {
  if (done.config.network !== 'bridge') return;
  await engine.networks.lock(async () => {
    const cur = engine.store.get(done.id);
    if (cur && (cur.state !== 'exited' || cur.startedAt !== done.startedAt)) return;
    await engine.networks.teardown(done.id, netnsPath(engine, done.id));
  });
}

/** `hull network rm`: refused while an instance (in any state) names the network. */
export async function removeNetwork(engine: Engine, name: string): Promise<void> {
  const def = engine.networks.store.get(name);
  const users = networkUsers(engine, def.name);
  if (users.length > 0) {
    throw new ConflictError(
      `network ${def.name} is used by instance(s) ${users.map((u) => u.name).join(', ')}; remove them first (hull network rm -f removes them too)`,
    );
  }
  await engine.networks.remove(def.name);
}

/** Instances (in any state) whose configuration names the network. */
export function networkUsers(engine: Engine, name: string): InstanceRecord[] {
  return engine.store.list().filter((r) => (r.config.networks ?? []).some((n) => n.name === name));
}

export { NetworkManager };
/** for front ends: the network definition type and the default network's name */
export { DEFAULT_NETWORK };
export type { NetworkDef } from '../network/store.js';

/**
 * `hull network connect`: add a network to an instance. A live instance joins at once (a new interface in its
 * namespace, a DNS record); a stopped one joins at its next start. The config records it either way.
 */
export async function connectInstance(
  engine: Engine,
  rec: InstanceRecord,
  network: string,
  opts: { ip?: string; aliases?: string[] } = {},
): Promise<'now' | 'next-start'> {
  if (rec.config.network !== 'bridge') {
    throw new InvalidArgumentError(
      `instance ${rec.name} uses --network ${rec.config.network}; it cannot join networks (create it with --network NAME)`,
    );
  }
  const [req] = await resolveNetworkRequests(engine, [
    { name: network, ...(opts.ip ? { ip: opts.ip } : {}), ...(opts.aliases?.length ? { aliases: opts.aliases } : {}) },
  ]);
  if ((rec.config.networks ?? []).some((n) => n.name === req!.name))
    throw new ConflictError(`instance ${rec.name} is already connected to network ${req!.name}`);
  // attached now (running, paused, or created: the namespace exists from create on): join at once, when the
  // driver can take a new interface live (a VM's NICs are fixed while it runs: it joins at its next start)
  const live = engine.networks.attachments(rec.id).length > 0;
  if (live && !engine.driver(rec.kind).capabilities.liveNetworkChanges) {
    saveConfig(engine, rec, { ...rec.config, networks: [...(rec.config.networks ?? []), req!] });
    engine.event(rec, 'network-connect', { network: req!.name });
    return 'next-start';
  }
  if (live) {
    const c = rec.config;
    const a = await engine.networks.connect(
      {
        instanceId: rec.id,
        instanceName: rec.name,
        netnsPath: netnsPath(engine, rec.id),
        networks: c.networks ?? [],
        ports: [],
        dns: c.dns ?? [],
        dnsSearch: [],
        extraHosts: [],
      },
      req!,
    );
    // docker adds the instance's address on the new network to its /etc/hosts
    updateHostsFile(hostsPath(engine, rec), {
      ips: [a.address, ...(a.address6 ? [a.address6] : [])].filter(Boolean).map((x) => x.split('/')[0]!),
      names: [...new Set([rec.config.hostname || rec.id.slice(0, 12), rec.name])],
    });
  }
  saveConfig(engine, rec, { ...rec.config, networks: [...(rec.config.networks ?? []), req!] });
  engine.event(rec, 'network-connect', { network: req!.name });
  return live ? 'now' : 'next-start';
}

/** `hull network disconnect`: take a network off an instance (at once when it runs). */
export async function disconnectInstance(
  engine: Engine,
  rec: InstanceRecord,
  network: string,
): Promise<'now' | 'next-start'> {
  const def = engine.networks.store.get(network);
  if (!(rec.config.networks ?? []).some((n) => n.name === def.name))
    throw new InvalidArgumentError(`instance ${rec.name} is not connected to network ${def.name}`);
  const live =
    engine.networks.attachments(rec.id).length > 0 && engine.driver(rec.kind).capabilities.liveNetworkChanges;
  if (live) {
    const a = engine.networks.attachments(rec.id).find((x) => x.network === def.name);
    await engine.networks.disconnect(rec.id, def.name);
    // and takes the lines of the addresses it had there out again
    if (a)
      updateHostsFile(
        hostsPath(engine, rec),
        null,
        [a.address, a.address6 ?? ''].filter(Boolean).map((x) => x.split('/')[0]!),
      );
  }
  saveConfig(engine, rec, { ...rec.config, networks: (rec.config.networks ?? []).filter((n) => n.name !== def.name) });
  engine.event(rec, 'network-disconnect', { network: def.name });
  return live || engine.networks.attachments(rec.id).length === 0 ? 'now' : 'next-start';
}

/** A container's /etc/hosts (bind-mounted from its instance dir); none for a VM, whose guest keeps its own. */
function hostsPath(engine: Engine, rec: InstanceRecord): string {
  return instancePaths(engine.instanceDir(rec.id)).hosts;
}

/** A changed configuration goes to the store and to the instance's saved record (instance-file.ts). */
function saveConfig(engine: Engine, rec: InstanceRecord, config: InstanceRecord['config']): void {
  engine.store.patch(rec.id, { config });
  saveInstanceFile(engine.instanceDir(rec.id), { ...rec, config });
}

/** The published ports of an instance that runs now (host ports resolved), as attached. */
export function publishedPorts(engine: Engine, rec: InstanceRecord): import('../common/instance.js').PortMapping[] {
  if (rec.state !== 'running' && rec.state !== 'paused') return [];
  return engine.networks.attachments(rec.id).flatMap((a) => a.ports);
}
