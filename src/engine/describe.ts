import type { Engine } from './engine.js';
import type { InstanceRecord } from './store.js';
import { publishedPorts } from './networking.js';

/** docker's NetworkSettings: the live attachments (address, gateway, MAC, aliases) and published ports. */
function networkSettings(engine: Engine, rec: InstanceRecord): Record<string, unknown> {
  const live = rec.state === 'running' || rec.state === 'paused';
  const attachments = live && rec.config.network === 'bridge' ? engine.networks.attachments(rec.id) : [];
  const ports: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of publishedPorts(engine, rec))
    (ports[`${p.containerPort}/${p.protocol}`] ??= []).push({
      HostIp: p.hostIp || '0.0.0.0',
      HostPort: String(p.hostPort),
    });
  const first = attachments[0];
  return {
    IPAddress: first ? first.address.split('/')[0] : '',
    Gateway: first?.gateway ?? '',
    ...ipv6Fields(first),
    MacAddress: first?.mac ?? '',
    Ports: ports,
    Networks: Object.fromEntries(
      attachments.map((a) => [
        a.network,
        {
          IPAddress: a.address.split('/')[0],
          IPPrefixLen: Number(a.address.split('/')[1] ?? 0),
          Gateway: a.gateway ?? '',
          ...ipv6Fields(a),
          MacAddress: a.mac ?? '',
          Aliases: a.names,
          Interface: a.interface,
        },
      ]),
    ),
  };
}

/** docker's IPv6 fields of an attachment (empty off dual-stack networks). */
function ipv6Fields(a: { address6?: string; gateway6?: string } | undefined): Record<string, unknown> {
  return {
    GlobalIPv6Address: a?.address6?.split('/')[0] ?? '',
    GlobalIPv6PrefixLen: Number(a?.address6?.split('/')[1] ?? 0),
    IPv6Gateway: a?.gateway6 ?? '',
  };
}

const iso = (ms: number | null) => (ms ? new Date(ms).toISOString() : '0001-01-01T00:00:00Z');

/** `hull inspect`: the full record of an instance, in docker's inspect vocabulary where it has one. */
export function describeInstance(engine: Engine, rec: InstanceRecord): Record<string, unknown> {
  const ctx = engine.context(rec);
  const c = rec.config;
  // a container's own settings; other kinds have none of these
  const k = c.container;
  return {
    Id: rec.id,
    Name: rec.name,
    Type: rec.kind,
    Created: iso(rec.createdAt),
    Path: c.command[0],
    Args: c.command.slice(1),
    State: {
      Status: rec.state,
      Running: rec.state === 'running' || rec.state === 'paused',
      Paused: rec.state === 'paused',
      Restarting: false,
      OOMKilled: rec.oomKilled,
      Pid: rec.pid,
      ExitCode: rec.exitCode ?? 0,
      Error: rec.exitReason ?? '',
      StartedAt: iso(rec.startedAt),
      FinishedAt: iso(rec.finishedAt),
      ...(c.healthcheck && rec.health
        ? {
            Health: {
              Status: rec.health.status,
              FailingStreak: rec.health.failingStreak,
              Log: rec.health.log.map((l) => ({
                Start: new Date(l.start).toISOString(),
                End: new Date(l.end).toISOString(),
                ExitCode: l.exitCode,
                Output: l.output,
              })),
            },
          }
        : {}),
    },
    Image: rec.imageId,
    ImageName: c.image,
    RestartCount: rec.restartCount,
    LogPath: engine.driver(rec.kind).logPath(ctx),
    ...(k ? { Runtime: k.runtime } : {}),
    SupervisorPid: rec.supervisorPid,
    Config: {
      Hostname: c.hostname,
      User: c.user,
      Env: c.env,
      Cmd: c.command,
      WorkingDir: c.workdir,
      Tty: c.tty,
      OpenStdin: c.stdin,
      Labels: c.labels,
      StopSignal: c.stopSignal,
      StopTimeout: c.stopTimeout,
      ...(c.healthcheck
        ? {
            Healthcheck: {
              Test: c.healthcheck.test,
              Interval: Math.round(c.healthcheck.intervalMs * 1e6),
              Timeout: Math.round(c.healthcheck.timeoutMs * 1e6),
              StartPeriod: Math.round(c.healthcheck.startPeriodMs * 1e6),
              Retries: c.healthcheck.retries,
            },
          }
        : {}),
    },
    HostConfig: {
      AutoRemove: c.autoRemove,
      Init: c.init === true,
      RestartPolicy: { Name: c.restart.name, MaximumRetryCount: c.restart.maxRetries },
      ReadonlyRootfs: c.readOnly,
      ...(k
        ? {
            Privileged: k.privileged,
            CapAdd: k.capAdd,
            CapDrop: k.capDrop,
            GroupAdd: k.groupAdd ?? [],
            SecurityOpt: [`no-new-privileges=${k.noNewPrivileges}`, `seccomp=${k.seccomp}`],
            UsernsMode: k.userns ? 'private' : 'host',
            IdMappings: k.userns,
            Ulimits: k.ulimits,
            ShmSize: k.shmSize ?? 64 * 1024 * 1024,
          }
        : {}),
      NetworkMode: c.network === 'bridge' ? (c.networks ?? []).map((n) => n.name).join(',') : c.network,
      PortBindings: Object.fromEntries(
        (c.ports ?? []).map((p) => [
          `${p.containerPort}/${p.protocol}`,
          [{ HostIp: p.hostIp, HostPort: p.hostPort ? String(p.hostPort) : '' }],
        ]),
      ),
      Dns: c.dns ?? [],
      DnsSearch: c.dnsSearch ?? [],
      ExtraHosts: c.extraHosts ?? [],
      Memory: c.resources.memory ?? 0,
      MemorySwap: c.resources.memorySwap ?? 0,
      NanoCpus: c.resources.cpus ? Math.round(c.resources.cpus * 1e9) : 0,
      CpuShares: c.resources.cpuShares ?? 0,
      CpusetCpus: c.resources.cpusetCpus ?? '',
      PidsLimit: c.resources.pidsLimit ?? 0,
      BlkioWeight: c.resources.blkioWeight ?? 0,
    },
    ...(c.vm ? { VmConfig: c.vm } : {}),
    Mounts: c.mounts,
    NetworkSettings: networkSettings(engine, rec),
  };
}
