import type {
  InstanceConfig,
  IsolationRequest,
  MountSpec,
  Resources,
  RestartPolicy,
  InstanceKind,
  LogConfig,
  PortMapping,
} from '../common/instance.js';
import { InvalidArgumentError } from '../common/errors.js';
import { mergeEnv, parseSignal } from '../common/parse.js';
import type { ImageRecord } from '../image/store.js';
import { exposedToMappings, parsePublish } from '../network/ports.js';
import { parseIp } from '../network/ipv4.js';
import { DEFAULT_NETWORK } from '../network/store.js';
import { resolveHealthcheck, type HealthcheckRequest } from './health.js';

/**
 * What a user asks for when creating an instance (already parsed from flags or an API body). The
 * IsolationRequest part (security settings, OCI runtime, VM settings) is resolved by the kind's driver.
 */
export interface CreateRequest extends IsolationRequest {
  kind: InstanceKind;
  image: string;
  name?: string;
  /** replaces the image's Cmd when non-empty */
  command?: string[];
  /** replaces the image's Entrypoint when set; [] resets it (docker's --entrypoint "") */
  entrypoint?: string[];
  env?: string[];
  user?: string;
  workdir?: string;
  hostname?: string;
  tty?: boolean;
  stdin?: boolean;
  mounts?: MountSpec[];
  readOnly?: boolean;
  resources?: Resources;
  stopSignal?: string;
  stopTimeout?: number;
  restart?: RestartPolicy;
  autoRemove?: boolean;
  labels?: Record<string, string>;
  /** one network mode or name (older callers); `networks` wins when both are given */
  network?: string;
  /** --network, repeatable: none, host, or hull network names (the default network when left out) */
  networks?: string[];
  /** --ip: static address on the first network */
  ip?: string;
  /** --network-alias: extra DNS names on every network */
  aliases?: string[];
  /** -p values, docker's syntax */
  publish?: string[];
  /** -P: publish every port the image EXPOSEs on a random host port */
  publishAll?: boolean;
  dns?: string[];
  dnsSearch?: string[];
  /** --add-host name:ip (ip may be host-gateway) */
  addHost?: string[];
  /** --log-driver / --log-opt */
  log?: LogConfig;
  /** -a: the streams to attach (absent: all) */
  attach?: ('stdin' | 'stdout' | 'stderr')[];
  /** --init: tini as pid 1 (containers; a VM's agent already is an init) */
  init?: boolean;
  /** --health-* / --no-healthcheck, merged over the image's HEALTHCHECK */
  health?: HealthcheckRequest;
}

/** --add-host NAME:host-gateway: resolved at start to the host's address on the default network */
export const HOST_GATEWAY = 'host-gateway';

const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Image config + the user's request → the common part of the instance's config (docker's precedence rules);
 * the kind's section comes from its driver (InstanceDriver.configure).
 */
export function buildInstanceConfig(image: ImageRecord, req: CreateRequest, id: string): InstanceConfig {
  const ic = image.config.config ?? {};
  const entrypoint = req.entrypoint ?? ic.Entrypoint ?? [];
  // docker: --entrypoint resets the image's Cmd too
  const cmd = req.command && req.command.length > 0 ? req.command : req.entrypoint !== undefined ? [] : (ic.Cmd ?? []);
  const command = [...entrypoint, ...cmd];
  if (command.length === 0) {
    throw new InvalidArgumentError(
      `no command specified: image ${req.image} has no Cmd or Entrypoint; give one after the image name`,
    );
  }
  const imageEnv = ic.Env ?? [DEFAULT_PATH];
  const restart = req.restart ?? { name: 'no', maxRetries: 0 };
  if (req.autoRemove && restart.name !== 'no') {
    throw new InvalidArgumentError('--rm and --restart cannot be combined: a removed instance cannot be restarted');
  }
  if (req.uts === 'host' && req.hostname !== undefined)
    throw new InvalidArgumentError("conflicting options: hostname and the UTS mode (--uts host uses the host's)");
  const net = networkConfig(image, req);
  const network = net.network;
  // --network container:X: X's hostname, known when the instance joins X
  const hostname = req.hostname ?? (network === 'host' || network.startsWith('container:') ? '' : id.slice(0, 12));
  const healthcheck = resolveHealthcheck(ic.Healthcheck, req.health);
  return {
    image: req.image,
    imageId: image.id,
    command,
    entrypoint,
    exposedPorts: exposedPorts(ic.ExposedPorts, net.ports ?? []),
    env: mergeEnv(imageEnv, req.env ?? []),
    workdir: req.workdir ?? (ic.WorkingDir || '/'),
    user: req.user ?? ic.User ?? '',
    hostname,
    tty: req.tty ?? false,
    stdin: req.stdin ?? false,
    mounts: req.mounts ?? [],
    readOnly: req.readOnly ?? false,
    resources: req.resources ?? {},
    stopSignal: req.stopSignal ?? (ic.StopSignal ? parseSignal(ic.StopSignal) : 'SIGTERM'),
    stopTimeout: req.stopTimeout ?? 10,
    restart,
    autoRemove: req.autoRemove ?? false,
    labels: { ...(ic.Labels ?? {}), ...(req.labels ?? {}) },
    ...(req.log ? { log: req.log } : {}),
    ...net,
    ...(req.init ? { init: true } : {}),
    ...(req.attach ? { attach: [...req.attach] } : {}),
    ...(healthcheck ? { healthcheck } : {}),
  };
}

/** docker's Config.ExposedPorts: the image's EXPOSE and every published port, "port/proto", in order, once each. */
function exposedPorts(image: Record<string, object> | undefined, published: PortMapping[]): string[] {
  const out = new Set<string>();
  for (const k of Object.keys(image ?? {})) out.add(k.includes('/') ? k : `${k}/tcp`);
  for (const p of published) out.add(`${p.containerPort}/${p.protocol}`);
  return [...out];
}

/** The network part of an instance's config: mode, networks, ports, DNS settings (validated; names resolved later). */
function networkConfig(
  image: ImageRecord,
  req: CreateRequest,
): Pick<InstanceConfig, 'network' | 'networks' | 'ports' | 'dns' | 'dnsSearch' | 'extraHosts'> {
  const names =
    req.networks && req.networks.length > 0
      ? req.networks
      : req.network !== undefined
        ? [req.network]
        : [DEFAULT_NETWORK];
  const ports = [
    ...(req.publish ?? []).flatMap(parsePublish),
    ...(req.publishAll ? exposedToMappings(image.config.config?.ExposedPorts) : []),
  ];
  for (const d of req.dns ?? []) parseIp(d, '--dns');
  const extraHosts = (req.addHost ?? []).map((h) => {
    const i = h.lastIndexOf(':');
    if (i <= 0 || !/^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$/.test(h.slice(0, i)))
      throw new InvalidArgumentError(`invalid --add-host "${h}": expected NAME:IP, e.g. db.local:10.89.1.5`);
    const ip = h.slice(i + 1);
    // host-gateway: the host's address on the default network (docker: the default bridge's gateway), at start
    if (ip !== HOST_GATEWAY) parseIp(ip, '--add-host address');
    return `${h.slice(0, i)}:${ip}`;
  });
  const joined = names.find((n) => n.startsWith('container:'));
  if (joined) return joinedNetworkConfig(joined, names, req, ports.length > 0 || !!req.publishAll, extraHosts);
  const mode = names.find((n) => n === 'none' || n === 'host');
  if (mode) {
    if (names.length > 1) throw new InvalidArgumentError(`--network ${mode} cannot be combined with other networks`);
    if (ports.length > 0)
      throw new InvalidArgumentError(
        `cannot publish ports with --network ${mode}: ${mode === 'host' ? "the instance uses the host's ports directly" : 'it has no network'}`,
      );
    if (req.ip !== undefined || (req.aliases ?? []).length > 0)
      throw new InvalidArgumentError(`--ip and --network-alias need a network; --network ${mode} has none`);
    return { network: mode, dns: req.dns ?? [], dnsSearch: req.dnsSearch ?? [], extraHosts };
  }
  for (const n of names) {
    if (n === 'private' || n === 'slirp4netns' || n === 'pasta') {
      throw new InvalidArgumentError(
        `unsupported --network ${n}: use none, host, or a hull network name (hull network ls)`,
      );
    }
  }
  if (req.ip !== undefined) parseIp(req.ip, '--ip');
  for (const a of req.aliases ?? []) {
    if (!/^[a-zA-Z0-9]([a-zA-Z0-9_.-]*[a-zA-Z0-9])?$/.test(a))
      throw new InvalidArgumentError(`invalid --network-alias "${a}": use letters, digits, . - _`);
  }
  return {
    network: 'bridge',
    networks: names.map((name, i) => ({
      name,
      ...(i === 0 && req.ip !== undefined ? { ip: req.ip } : {}),
      ...((req.aliases ?? []).length > 0 ? { aliases: req.aliases } : {}),
    })),
    ports,
    dns: req.dns ?? [],
    dnsSearch: req.dnsSearch ?? [],
    extraHosts,
  };
}

/**
 * --network container:X: the network namespace of instance X (resolved and checked when the instance is made);
 * what would configure a network of its own conflicts, in docker's words.
 */
function joinedNetworkConfig(
  mode: string,
  names: string[],
  req: CreateRequest,
  publishes: boolean,
  extraHosts: string[],
): Pick<InstanceConfig, 'network' | 'dns' | 'dnsSearch' | 'extraHosts'> {
  if (names.length > 1) throw new InvalidArgumentError(`--network ${mode} cannot be combined with other networks`);
  if (mode === 'container:') throw new InvalidArgumentError('invalid --network container:: name the instance to join');
  if (publishes)
    throw new InvalidArgumentError('conflicting options: port publishing and the container type network mode');
  if (req.hostname !== undefined) throw new InvalidArgumentError('conflicting options: hostname and the network mode');
  if ((req.dns ?? []).length > 0 || (req.dnsSearch ?? []).length > 0)
    throw new InvalidArgumentError('conflicting options: dns and the network mode');
  if (extraHosts.length > 0)
    throw new InvalidArgumentError('conflicting options: custom host-to-IP mapping and the network mode');
  if (req.ip !== undefined || (req.aliases ?? []).length > 0)
    throw new InvalidArgumentError(`--ip and --network-alias need a network; --network ${mode} shares another's`);
  return { network: mode, dns: [], dnsSearch: [], extraHosts: [] };
}
