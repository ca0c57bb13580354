import type { Engine } from './engine.js';
import type { InstanceRecord } from './store.js';

const iso = (ms: number | null) => (ms ? new Date(ms).toISOString() : '0001-01-01T00:00:00Z');

/** `hull inspect`: the full record of an instance, in docker's inspect vocabulary where it has one. */
export function describeInstance(engine: Engine, rec: InstanceRecord): Record<string, unknown> {
  const ctx = engine.context(rec);
  const c = rec.config;
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
      Pid: rec.pid,
      ExitCode: rec.exitCode ?? 0,
      Error: rec.exitReason ?? '',
      StartedAt: iso(rec.startedAt),
      FinishedAt: iso(rec.finishedAt),
    },
    Image: rec.imageId,
    ImageName: c.image,
    RestartCount: rec.restartCount,
    LogPath: engine.driver(rec.kind).logPath(ctx),
    Runtime: c.runtime,
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
    },
    HostConfig: {
      AutoRemove: c.autoRemove,
      RestartPolicy: { Name: c.restart.name, MaximumRetryCount: c.restart.maxRetries },
      Privileged: c.privileged,
      ReadonlyRootfs: c.readOnly,
      CapAdd: c.capAdd,
      CapDrop: c.capDrop,
      SecurityOpt: [`no-new-privileges=${c.noNewPrivileges}`, `seccomp=${c.seccomp}`],
      UsernsMode: c.userns ? 'private' : 'host',
      IdMappings: c.userns,
      NetworkMode: c.network,
      Memory: c.resources.memory ?? 0,
      MemorySwap: c.resources.memorySwap ?? 0,
      NanoCpus: c.resources.cpus ? Math.round(c.resources.cpus * 1e9) : 0,
      CpuShares: c.resources.cpuShares ?? 0,
      CpusetCpus: c.resources.cpusetCpus ?? '',
      PidsLimit: c.resources.pidsLimit ?? 0,
      BlkioWeight: c.resources.blkioWeight ?? 0,
      Ulimits: c.ulimits,
    },
    Mounts: c.mounts,
  };
}
