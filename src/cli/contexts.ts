/**
 * The data docker's --format templates see for each listing command, in docker's field names: one object per
 * row (a Go struct to the template: an unknown field is an error, as in docker), with the header name of each
 * field for `table ...` formats. JSON keys are in docker's order (sorted, as docker marshals these contexts).
 */
import { goStruct } from '../common/gotemplate.js';
import type { InstanceRecord } from '../engine/store.js';
import type { EventRecord } from '../engine/store.js';
import type { ImageRecord } from '../engine/transfer.js';
import { ago, dockerBytes, dockerHumanSize, goTimeString } from './format.js';

const ellipsis = (s: string, n: number) => ([...s].length > n ? [...s].slice(0, n - 1).join('') + '…' : s);

export const psHeaders = {
  Command: 'COMMAND',
  CreatedAt: 'CREATED AT',
  ID: 'CONTAINER ID',
  Image: 'IMAGE',
  Labels: 'LABELS',
  LocalVolumes: 'LOCAL VOLUMES',
  Mounts: 'MOUNTS',
  Names: 'NAMES',
  Networks: 'NETWORKS',
  Ports: 'PORTS',
  RunningFor: 'CREATED',
  Size: 'SIZE',
  State: 'STATE',
  Status: 'STATUS',
  Type: 'TYPE',
  Kind: 'KIND',
  Label: 'LABEL',
};

/** docker's ports column: 0.0.0.0:8080->80/tcp, joined by ", ". */
export function portsText(rec: InstanceRecord): string {
  return (rec.config.ports ?? [])
    .map((p) => `${p.hostIp || '0.0.0.0'}:${p.hostPort}->${p.containerPort}/${p.protocol}`)
    .join(', ');
}

/** One row of `ps` (docker's formatter.ContainerContext); `status` is the STATUS text hull shows. */
export function psContext(
  rec: InstanceRecord,
  o: { trunc: boolean; status: string; ports?: string; addresses?: () => string[] },
) {
  const labels = rec.config.labels ?? {};
  const mounts = rec.config.mounts
    .map((m) => (m.type === 'bind' ? m.source : m.target))
    .map((n) => (o.trunc ? ellipsis(n, 15) : n));
  const networks =
    rec.config.network === 'bridge' ? (rec.config.networks ?? []).map((n) => n.name) : [rec.config.network];
  const command = rec.config.command.join(' ');
  const ctx = {
    Command: JSON.stringify(o.trunc ? ellipsis(command, 20) : command),
    CreatedAt: goTimeString(rec.createdAt),
    ID: o.trunc ? rec.id.slice(0, 12) : rec.id,
    Image: rec.config.image,
    Labels: Object.keys(labels)
      .sort()
      .map((k) => `${k}=${labels[k]}`)
      .join(','),
    LocalVolumes: '0',
    Mounts: mounts.join(','),
    Names: rec.name,
    Networks: networks.join(','),
    Ports: o.ports ?? portsText(rec),
    RunningFor: ago(rec.createdAt),
    Size: '0B',
    State: rec.state,
    Status: o.status,
    Type: rec.kind,
  };
  Object.defineProperty(ctx, 'Kind', { value: rec.kind, enumerable: false });
  // hull's own: the instance's addresses (a full OS VM's as its guest agent reports them), computed when asked
  Object.defineProperty(ctx, 'Addresses', { get: () => (o.addresses?.() ?? []).join(', '), enumerable: false });
  Object.defineProperty(ctx, 'Label', { value: (name: string) => labels[name] ?? '', enumerable: false });
  return goStruct('*formatter.ContainerContext', ctx);
}

export const imageHeaders = {
  Containers: 'CONTAINERS',
  CreatedAt: 'CREATED AT',
  CreatedSince: 'CREATED',
  Digest: 'DIGEST',
  ID: 'IMAGE ID',
  Repository: 'REPOSITORY',
  SharedSize: 'SHARED SIZE',
  Size: 'SIZE',
  Tag: 'TAG',
  UniqueSize: 'UNIQUE SIZE',
  VirtualSize: 'VIRTUAL SIZE',
};

/** The rows of `images` for one image (docker's formatter.ImageContext): one per name, or one <none>:<none>. */
export function imageContexts(img: ImageRecord, o: { trunc: boolean; containers: number }) {
  const created = Date.parse(img.created);
  return (img.names.length ? img.names : ['<none>:<none>']).map((n) => {
    const at = n.indexOf('@');
    const c = at >= 0 ? at : n.lastIndexOf(':');
    return goStruct('*formatter.ImageContext', {
      Containers: String(o.containers),
      CreatedAt: goTimeString(created),
      CreatedSince: ago(created),
      Digest: at >= 0 ? n.slice(at + 1) : img.manifestDigest,
      ID: o.trunc ? img.id.slice(7, 19) : img.id,
      Repository: n.slice(0, c),
      SharedSize: 'N/A',
      Size: dockerHumanSize(img.size),
      Tag: at >= 0 ? '<none>' : n.slice(c + 1),
      UniqueSize: 'N/A',
      VirtualSize: dockerHumanSize(img.size),
    });
  });
}

export const statsHeaders = {
  BlockIO: 'BLOCK I/O',
  CPUPerc: 'CPU %',
  Container: 'CONTAINER',
  ID: 'CONTAINER ID',
  MemPerc: 'MEM %',
  MemUsage: 'MEM USAGE / LIMIT',
  Name: 'NAME',
  NetIO: 'NET I/O',
  PIDs: 'PIDS',
};

/** One row of `stats` (docker's statsContext), from hull's sample. */
export function statsContext(
  s: {
    id: string;
    name: string;
    cpuPercent: number;
    memoryUsage: number;
    memoryLimit: number;
    blkioRead: number;
    blkioWrite: number;
    pids: number;
    netRx?: number;
    netTx?: number;
  },
  container: string,
) {
  return goStruct('*container.statsContext', {
    BlockIO: `${dockerHumanSize(s.blkioRead)} / ${dockerHumanSize(s.blkioWrite)}`,
    CPUPerc: `${s.cpuPercent.toFixed(2)}%`,
    Container: container,
    ID: s.id,
    MemPerc: `${s.memoryLimit ? ((s.memoryUsage / s.memoryLimit) * 100).toFixed(2) : '0.00'}%`,
    MemUsage: `${dockerBytes(s.memoryUsage)} / ${dockerBytes(s.memoryLimit)}`,
    Name: s.name,
    NetIO: `${dockerHumanSize(s.netRx ?? 0)} / ${dockerHumanSize(s.netTx ?? 0)}`,
    PIDs: String(s.pids),
  });
}

/** One event as docker's events.Message: Go field names to templates, docker's JSON keys to json. */
export function eventContext(e: EventRecord) {
  const isContainer = e.type === 'container';
  const json = {
    ...(isContainer ? { status: e.action, id: e.id, from: e.attributes.image ?? '' } : {}),
    Type: e.type,
    Action: e.action,
    Actor: { ID: e.id, Attributes: e.attributes },
    scope: 'local',
    time: Math.floor(e.time / 1000),
    timeNano: e.time * 1e6,
  };
  const ctx = goStruct('events.Message', {
    Status: isContainer ? e.action : '',
    ID: isContainer ? e.id : '',
    From: isContainer ? (e.attributes.image ?? '') : '',
    Type: e.type,
    Action: e.action,
    Actor: goStruct('events.Actor', { ID: e.id, Attributes: e.attributes }),
    Scope: 'local',
    Time: Math.floor(e.time / 1000),
    TimeNano: e.time * 1e6,
  });
  Object.defineProperty(ctx, 'toJSON', { value: () => json, enumerable: false });
  return ctx;
}

export const networkHeaders = {
  CreatedAt: 'CREATED AT',
  Driver: 'DRIVER',
  ID: 'NETWORK ID',
  IPv6: 'IPV6',
  Internal: 'INTERNAL',
  Labels: 'LABELS',
  Name: 'NAME',
  Scope: 'SCOPE',
  Subnet: 'SUBNET',
  Gateway: 'GATEWAY',
  Attached: 'ATTACHED',
  Label: 'LABEL',
};

/** One row of `network ls` (docker's formatter.networkContext), with hull's SUBNET, GATEWAY and ATTACHED. */
export function networkContext(
  d: {
    id: string;
    name: string;
    driver: string;
    internal: boolean;
    labels: Record<string, string>;
    createdAt: number;
    subnet: string;
    gateway: string;
    ipv6?: unknown;
  },
  o: { trunc: boolean; attached: number },
) {
  const labels = d.labels ?? {};
  const ctx = goStruct('*formatter.networkContext', {
    CreatedAt: goTimeString(d.createdAt),
    Driver: d.driver,
    ID: o.trunc ? d.id.slice(0, 12) : d.id,
    IPv6: String(!!d.ipv6),
    Internal: String(d.internal),
    Labels: Object.keys(labels)
      .sort()
      .map((k) => `${k}=${labels[k]}`)
      .join(','),
    Name: d.name,
    Scope: 'local',
    Subnet: d.subnet,
    Gateway: d.gateway,
    Attached: String(o.attached),
  });
  Object.defineProperty(ctx, 'Label', { value: (name: string) => labels[name] ?? '', enumerable: false });
  return ctx;
}
