/**
 * `hull inspect`, `hull image inspect` and `hull network inspect`: docker's documents (Engine API v1.41,
 * `GET /containers/{id}/json`, `/images/{name}/json`, `/networks/{id}`), so that tools written for docker read
 * them unchanged, and the Docker API serves the same objects. Fields hull has no notion of carry docker's zero
 * values; what only hull has (the kind, a VM's machine, the supervisor) goes into a `Hull` section.
 *
 * Each document is built in two steps: gather what the engine knows now (live network attachments, the driver's
 * files) into a view, then a pure function turns the record and the view into the document (unit-tested).
 */
import { createHash } from 'node:crypto';
import type {
  DriverDescription,
  InstanceConfig,
  MountSpec,
  NetworkAttachment,
  PortMapping,
} from '../common/instance.js';
import type { ImageRecord } from '../image/store.js';
import type { NetworkDef } from '../network/store.js';
import type { HealthState } from './health.js';
import type { Engine } from './engine.js';
import { netnsPath, publishedPorts } from './networking.js';
import type { InstanceRecord } from './store.js';

/** docker's zero time (Go's time.Time{}), for a time that never happened. */
export const ZERO_TIME = '0001-01-01T00:00:00Z';
const iso = (ms: number | null | undefined) => (ms ? new Date(ms).toISOString() : ZERO_TIME);
const orNull = <T>(a: T[] | undefined): T[] | null => (a && a.length > 0 ? a : null);
type Loose = Record<string, unknown>;
const hash = (s: string) => createHash('sha256').update(s).digest('hex');

/** The instance's health (docker's State.Health), or null without a healthcheck (the `health` filter's `none`). */
export function healthOf(rec: InstanceRecord): HealthState | null {
  if (!rec.config.healthcheck) return null;
  return rec.health ?? { status: 'starting', failingStreak: 0, log: [] };
}

/** docker's Config.Healthcheck: durations in nanoseconds. */
function healthcheckConfig(c: InstanceConfig): Record<string, unknown> | null {
  const h = c.healthcheck;
  if (!h) return null;
  return {
    Test: h.test,
    Interval: Math.round(h.intervalMs * 1e6),
    Timeout: Math.round(h.timeoutMs * 1e6),
    StartPeriod: Math.round(h.startPeriodMs * 1e6),
    Retries: h.retries,
  };
}

/** docker's HostConfig.LogConfig: the driver and its options as strings. */
function logConfig(c: InstanceConfig): { Type: string; Config: Record<string, string> } {
  const l = c.log;
  const opts: Record<string, string> = {};
  if (l?.maxSize !== undefined) opts['max-size'] = String(l.maxSize);
  if (l?.maxFile !== undefined) opts['max-file'] = String(l.maxFile);
  if (l?.labels?.length) opts.labels = l.labels.join(',');
  if (l?.env?.length) opts.env = l.env.join(',');
  return { Type: l?.driver ?? 'k8s-file', Config: opts };
}

/** What the engine knows of an instance besides its record, gathered for a document. */
export interface InstanceView {
  /** the live attachments (empty while it is not running) */
  attachments: NetworkAttachment[];
  /** the host ports published now (resolved), empty while it is not running */
  published: PortMapping[];
  /** its ports published on every address answer on IPv6 too (hull's proxy): docker lists them under `::` */
  proxied: boolean;
  /** network name → network id, for the networks it is configured on */
  networkIds: Record<string, string>;
  logPath: string;
  /** the instance's network namespace, while it has one */
  sandboxKey: string;
  /** the driver's part (root filesystem, kind-specific facts) */
  driver: DriverDescription | null;
}

/** Gather the view of an instance from the engine (networks, driver files); never throws for a missing part. */
export function instanceView(engine: Engine, rec: InstanceRecord): InstanceView {
  const live = rec.state === 'running' || rec.state === 'paused';
  const c = rec.config;
  const attachments = live && c.network === 'bridge' ? engine.networks.attachments(rec.id) : [];
  const networkIds: Record<string, string> = {};
  for (const n of c.networks ?? []) {
    try {
      networkIds[n.name] = engine.networks.store.get(n.name).id;
    } catch {
      networkIds[n.name] = ''; // removed since (only possible for an older record)
    }
  }
  const driver = engine.driver(rec.kind);
  const ctx = engine.context(rec);
  return {
    attachments,
    published: publishedPorts(engine, rec),
    proxied: live && engine.networks.proxied(rec.id),
    networkIds,
    logPath: driver.logPath(ctx),
    sandboxKey: attachments.length > 0 ? netnsPath(engine, rec.id) : '',
    driver: driver.describe?.(ctx) ?? null,
  };
}

/** `hull inspect`: one instance as docker's container inspect document. */
export function describeInstance(engine: Engine, rec: InstanceRecord): Record<string, unknown> {
  return instanceDocument(rec, instanceView(engine, rec));
}

/** docker's State.Status for a hull state (hull's own states are a subset of docker's). */
export function dockerStatus(rec: Pick<InstanceRecord, 'state'>): string {
  return rec.state;
}

/** docker's NetworkSettings.Ports: every exposed port, with its host bindings (null when not published). */
function portsDocument(c: InstanceConfig, view: InstanceView): Record<string, unknown> {
  const ports: Record<string, { HostIp: string; HostPort: string }[] | null> = {};
  if (view.published.length === 0 && view.attachments.length === 0) return ports;
  for (const e of c.exposedPorts ?? []) ports[e] = null;
  for (const p of view.published) {
    const list = (ports[`${p.containerPort}/${p.protocol}`] ??= []);
    list.push({ HostIp: p.hostIp || '0.0.0.0', HostPort: String(p.hostPort) });
    if (!p.hostIp && view.proxied) list.push({ HostIp: '::', HostPort: String(p.hostPort) });
  }
  return ports;
}

function networkSettings(rec: InstanceRecord, view: InstanceView): Record<string, unknown> {
  const c = rec.config;
  const byName = new Map(view.attachments.map((a) => [a.network, a]));
  const first = view.attachments[0];
  const addr = (a: NetworkAttachment | undefined) => (a ? a.address.split('/')[0]! : '');
  const prefix = (a: NetworkAttachment | undefined) => (a ? Number(a.address.split('/')[1] ?? 0) : 0);
  const addr6 = (a: NetworkAttachment | undefined) => a?.address6?.split('/')[0] ?? '';
  const prefix6 = (a: NetworkAttachment | undefined) => Number(a?.address6?.split('/')[1] ?? 0);
  const endpoint = (a: NetworkAttachment | undefined) => (a ? hash(`${rec.id}/${a.network}`) : '');
  const networks: Record<string, unknown> = {};
  if (c.network === 'bridge') {
    for (const n of c.networks ?? []) {
      const a = byName.get(n.name);
      networks[n.name] = {
        IPAMConfig: n.ip ? { IPv4Address: n.ip } : null,
        Links: null,
        Aliases: orNull(n.aliases),
        NetworkID: view.networkIds[n.name] ?? '',
        EndpointID: endpoint(a),
        Gateway: a?.gateway ?? '',
        IPAddress: addr(a),
        IPPrefixLen: prefix(a),
        IPv6Gateway: a?.gateway6 ?? '',
        GlobalIPv6Address: addr6(a),
        GlobalIPv6PrefixLen: prefix6(a),
        MacAddress: a?.mac ?? '',
        DriverOpts: null,
      };
    }
  } else if (c.network === 'none' || c.network === 'host') {
    // docker lists the host and none networks too, with no address (and none for container:X)
    networks[c.network] = {
      IPAMConfig: null,
      Links: null,
      Aliases: null,
      NetworkID: '',
      EndpointID: '',
      Gateway: '',
      IPAddress: '',
      IPPrefixLen: 0,
      IPv6Gateway: '',
      GlobalIPv6Address: '',
      GlobalIPv6PrefixLen: 0,
      MacAddress: '',
      DriverOpts: null,
    };
  }
  return {
    Bridge: first?.bridge ?? '',
    SandboxID: view.sandboxKey ? hash(view.sandboxKey) : '',
    HairpinMode: false,
    LinkLocalIPv6Address: '',
    LinkLocalIPv6PrefixLen: 0,
    Ports: portsDocument(c, view),
    SandboxKey: view.sandboxKey,
    SecondaryIPAddresses: null,
    SecondaryIPv6Addresses: null,
    EndpointID: endpoint(first),
    Gateway: first?.gateway ?? '',
    GlobalIPv6Address: addr6(first),
    GlobalIPv6PrefixLen: prefix6(first),
    IPAddress: addr(first),
    IPPrefixLen: prefix(first),
    IPv6Gateway: first?.gateway6 ?? '',
    MacAddress: first?.mac ?? '',
    Networks: networks,
  };
}

/** docker's .Mounts: the bind mounts and volumes (docker lists --tmpfs mounts only under HostConfig.Tmpfs). */
function mountsDocument(mounts: MountSpec[]): Record<string, unknown>[] {
  return mounts.flatMap((m) =>
    m.type !== 'bind'
      ? []
      : m.volume
        ? [
            // a volume (engine/volumes.ts), as docker's local driver shows one
            {
              Type: 'volume',
              Name: m.volume,
              Source: m.source,
              Destination: m.target,
              Driver: 'local',
              Mode: m.readonly ? 'ro' : 'z',
              RW: !m.readonly,
              Propagation: '',
            },
          ]
        : [
            {
              Type: 'bind',
              Source: m.source,
              Destination: m.target,
              Mode: m.readonly ? 'ro' : '',
              RW: !m.readonly,
              Propagation: m.propagation ?? 'rprivate',
            },
          ],
  );
}

/** The instance's document from its record and the view (pure). */
export function instanceDocument(rec: InstanceRecord, view: InstanceView): Record<string, unknown> {
  const c = rec.config;
  const k = c.container;
  const live = rec.state === 'running' || rec.state === 'paused';
  const entrypoint = c.entrypoint ?? [];
  const cmd = c.command.slice(entrypoint.length);
  const health = healthOf(rec);
  const binds = c.mounts.flatMap((m) =>
    m.type === 'bind' ? [`${m.source}:${m.target}${m.readonly ? ':ro' : ''}`] : [],
  );
  const tmpfs = Object.fromEntries(
    c.mounts.flatMap((m) => (m.type === 'tmpfs' ? [[m.target, m.options.join(',')]] : [])),
  );
  const securityOpt = k
    ? [
        ...(k.noNewPrivileges ? ['no-new-privileges'] : []),
        ...(k.seccomp !== 'default' ? [`seccomp=${k.seccomp}`] : []),
      ]
    : [];
  const portBindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of c.ports ?? [])
    (portBindings[`${p.containerPort}/${p.protocol}`] ??= []).push({
      HostIp: p.hostIp,
      HostPort: p.hostPort ? String(p.hostPort) : '',
    });
  const r = c.resources;
  const sysctls = { ...(k?.sysctls ?? {}), ...(c.vm?.sysctls ?? {}) };
  const etc = view.driver?.etcFiles;
  return {
    Id: rec.id,
    Created: iso(rec.createdAt),
    Path: c.command[0] ?? '',
    Args: c.command.slice(1),
    State: {
      Status: dockerStatus(rec),
      Running: live,
      Paused: rec.state === 'paused',
      Restarting: false,
      OOMKilled: rec.oomKilled,
      Dead: false,
      Pid: live ? rec.pid : 0,
      ExitCode: rec.exitCode ?? 0,
      Error: rec.exitReason ?? '',
      StartedAt: iso(rec.startedAt),
      FinishedAt: iso(rec.finishedAt),
      ...(health
        ? {
            Health: {
              Status: health.status,
              FailingStreak: health.failingStreak,
              Log: health.log.map((l) => ({
                Start: iso(l.start),
                End: iso(l.end),
                ExitCode: l.exitCode,
                Output: l.output,
              })),
            },
          }
        : {}),
    },
    Image: rec.imageId,
    ResolvConfPath: etc?.resolvConf ?? '',
    HostnamePath: etc?.hostname ?? '',
    HostsPath: etc?.hosts ?? '',
    LogPath: view.logPath,
    Name: `/${rec.name}`,
    RestartCount: rec.restartCount,
    Driver: view.driver?.graphDriver.Name ?? '',
    Platform: 'linux',
    MountLabel: '',
    ProcessLabel: '',
    AppArmorProfile: '',
    ExecIDs: null,
    HostConfig: {
      Binds: orNull(binds),
      ContainerIDFile: '',
      LogConfig: logConfig(c),
      NetworkMode: c.network === 'bridge' ? (c.networks?.[0]?.name ?? 'bridge') : c.network,
      PortBindings: portBindings,
      RestartPolicy: { Name: c.restart.name, MaximumRetryCount: c.restart.maxRetries },
      AutoRemove: c.autoRemove,
      VolumeDriver: '',
      VolumesFrom: null,
      CapAdd: orNull(k?.capAdd),
      CapDrop: orNull(k?.capDrop),
      CgroupnsMode: 'host',
      Dns: c.dns ?? [],
      DnsOptions: [],
      DnsSearch: c.dnsSearch ?? [],
      ExtraHosts: orNull(c.extraHosts),
      GroupAdd: orNull(k?.groupAdd),
      IpcMode: k?.ipcMode ?? 'private',
      Cgroup: '',
      Links: null,
      OomScoreAdj: 0,
      PidMode: k?.pidMode && k.pidMode !== 'private' ? k.pidMode : '',
      Privileged: k?.privileged ?? false,
      PublishAllPorts: false,
      ReadonlyRootfs: c.readOnly,
      SecurityOpt: orNull(securityOpt),
      ...(Object.keys(tmpfs).length > 0 ? { Tmpfs: tmpfs } : {}),
      UTSMode: k?.utsMode && k.utsMode !== 'private' ? k.utsMode : '',
      UsernsMode: k?.userns ? 'private' : '',
      ShmSize: k?.shmSize ?? 64 * 1024 * 1024,
      Runtime: k?.runtime ?? String(view.driver?.details.Runtime ?? ''),
      ConsoleSize: [0, 0],
      Isolation: rec.kind,
      CpuShares: r.cpuShares ?? 0,
      Memory: r.memory ?? 0,
      NanoCpus: r.cpus ? Math.round(r.cpus * 1e9) : 0,
      CgroupParent: '',
      BlkioWeight: r.blkioWeight ?? 0,
      BlkioWeightDevice: [],
      BlkioDeviceReadBps: null,
      BlkioDeviceWriteBps: null,
      BlkioDeviceReadIOps: null,
      BlkioDeviceWriteIOps: null,
      CpuPeriod: 0,
      CpuQuota: 0,
      CpuRealtimePeriod: 0,
      CpuRealtimeRuntime: 0,
      CpusetCpus: r.cpusetCpus ?? '',
      CpusetMems: r.cpusetMems ?? '',
      Devices: (k?.devices ?? []).map((d) => ({
        PathOnHost: d.pathOnHost,
        PathInContainer: d.pathInContainer,
        CgroupPermissions: d.permissions,
      })),
      DeviceCgroupRules: orNull(k?.deviceCgroupRules),
      DeviceRequests: null,
      KernelMemory: 0,
      KernelMemoryTCP: 0,
      MemoryReservation: 0,
      MemorySwap: r.memorySwap ?? 0,
      MemorySwappiness: null,
      OomKillDisable: false,
      PidsLimit: r.pidsLimit ?? null,
      Ulimits: orNull(k?.ulimits.map((u) => ({ Name: u.type, Soft: u.soft, Hard: u.hard }))),
      Init: c.init === true,
      ...(Object.keys(sysctls).length > 0 ? { Sysctls: sysctls } : {}),
      CpuCount: 0,
      CpuPercent: 0,
      IOMaximumIOps: 0,
      IOMaximumBandwidth: 0,
    },
    GraphDriver: view.driver?.graphDriver ?? { Name: '', Data: null },
    Mounts: mountsDocument(c.mounts),
    Config: {
      Hostname: c.hostname,
      Domainname: '',
      User: c.user,
      AttachStdin: c.stdin && (!c.attach || c.attach.includes('stdin')),
      AttachStdout: !c.attach || c.attach.includes('stdout'),
      AttachStderr: !c.attach || c.attach.includes('stderr'),
      ...(c.exposedPorts && c.exposedPorts.length > 0
        ? { ExposedPorts: Object.fromEntries(c.exposedPorts.map((p) => [p, {}])) }
        : {}),
      Tty: c.tty,
      OpenStdin: c.stdin,
      StdinOnce: false,
      Env: c.env,
      Cmd: orNull(cmd),
      ...(healthcheckConfig(c) ? { Healthcheck: healthcheckConfig(c) } : {}),
      Image: c.image,
      Volumes: null,
      WorkingDir: c.workdir === '/' ? '' : c.workdir,
      Entrypoint: orNull(entrypoint),
      OnBuild: null,
      Labels: c.labels,
      StopSignal: c.stopSignal,
      StopTimeout: c.stopTimeout,
    },
    NetworkSettings: networkSettings(rec, view),
    Hull: {
      Kind: rec.kind,
      SupervisorPid: rec.supervisorPid,
      StoppedByUser: rec.stoppedByUser,
      ExitReason: rec.exitReason,
      IdMappings: k?.userns ?? null,
      Networks: view.attachments.map((a) => ({
        Network: a.network,
        Interface: a.interface,
        Address: a.address,
        Names: a.names,
      })),
      ...(view.driver?.details ?? {}),
      ...(c.vm ? { Vm: c.vm } : {}),
    },
  };
}

/** The image's config as docker shows it (Config and ContainerConfig of an image inspect). */
function imageConfigDocument(ic: Loose | undefined): Record<string, unknown> {
  const o = ic ?? {};
  return {
    Hostname: '',
    Domainname: '',
    User: o.User ?? '',
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    ...(o.ExposedPorts ? { ExposedPorts: o.ExposedPorts } : {}),
    Tty: false,
    OpenStdin: false,
    StdinOnce: false,
    Env: o.Env ?? null,
    Cmd: o.Cmd ?? null,
    ...(o.Healthcheck ? { Healthcheck: o.Healthcheck } : {}),
    Image: '',
    Volumes: o.Volumes ?? null,
    WorkingDir: o.WorkingDir ?? '',
    Entrypoint: o.Entrypoint ?? null,
    OnBuild: o.OnBuild ?? null,
    Labels: o.Labels ?? null,
    ...(o.StopSignal ? { StopSignal: o.StopSignal } : {}),
    ...(o.Shell ? { Shell: o.Shell } : {}),
  };
}

/** `hull image inspect`: docker's image document (pure). hull's manifest, layers and history are under Hull. */
export function imageDocument(img: ImageRecord): Record<string, unknown> {
  const cfg = img.config;
  return {
    Id: img.id,
    RepoTags: img.names.filter((n) => !n.includes('@')),
    RepoDigests: img.names.filter((n) => n.includes('@')),
    Parent: '',
    Comment: cfg.history?.at(-1)?.comment ?? '',
    Created: img.created,
    Container: '',
    ContainerConfig: imageConfigDocument(undefined),
    DockerVersion: '',
    Author: cfg.author ?? '',
    Config: imageConfigDocument(cfg.config as Loose | undefined),
    Architecture: cfg.architecture,
    ...(cfg.variant ? { Variant: cfg.variant } : {}),
    Os: cfg.os,
    Size: img.size,
    VirtualSize: img.size,
    GraphDriver: { Name: 'overlay', Data: null },
    RootFS: { Type: 'layers', Layers: cfg.rootfs.diff_ids },
    Metadata: { LastTagTime: ZERO_TIME },
    Hull: { ManifestDigest: img.manifestDigest, Layers: img.layers, History: cfg.history ?? [] },
  };
}

/** What a network document needs of each attached instance. */
export interface NetworkMember {
  id: string;
  name: string;
  attachment: NetworkAttachment;
}

/** `hull network inspect`: docker's network document (pure). */
export function networkDocument(def: NetworkDef, members: NetworkMember[]): Record<string, unknown> {
  return {
    Name: def.name,
    Id: def.id,
    Created: iso(def.createdAt),
    Scope: 'local',
    Driver: def.driver,
    EnableIPv6: !!def.ipv6,
    IPAM: {
      Driver: 'default',
      Options: null,
      Config: [
        { Subnet: def.subnet, Gateway: def.gateway, ...(def.ipRange ? { IPRange: def.ipRange } : {}) },
        ...(def.ipv6 ? [{ Subnet: def.ipv6.subnet, Gateway: def.ipv6.gateway }] : []),
      ],
    },
    Internal: def.internal,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: Object.fromEntries(
      members.map((m) => [
        m.id,
        {
          Name: m.name,
          EndpointID: hash(`${m.id}/${def.name}`),
          MacAddress: m.attachment.mac ?? '',
          IPv4Address: m.attachment.address,
          IPv6Address: m.attachment.address6 ?? '',
        },
      ]),
    ),
    Options: {
      'com.docker.network.bridge.name': def.bridge,
      ...(def.mtu ? { 'com.docker.network.driver.mtu': String(def.mtu) } : {}),
    },
    Labels: def.labels,
    Hull: {
      Bridge: def.bridge,
      DNSEnabled: def.dns,
      Members: Object.fromEntries(
        members.map((m) => [m.id, { Interface: m.attachment.interface, Names: m.attachment.names }]),
      ),
    },
  };
}

/** `hull network inspect` of one network, with the instances attached now. */
export function describeNetwork(engine: Engine, def: NetworkDef): Record<string, unknown> {
  const members: NetworkMember[] = [];
  for (const id of engine.networks.users(def.name)) {
    const a = engine.networks.attachments(id).find((x) => x.network === def.name);
    if (a) members.push({ id, name: engine.store.get(id)?.name ?? '', attachment: a });
  }
  return networkDocument(def, members);
}
