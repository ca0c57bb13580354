/** docker's `/_ping`, `/version` and `/info`. */
import { cpus, hostname, release, totalmem } from 'node:os';
import { systemInfo } from '../../engine/info.js';
import type { Router } from '../http.js';
import { sendJson } from '../http.js';

/** The Docker Engine API version hull speaks (docker 20.10's). */
export const API_VERSION = '1.41';
export const MIN_API_VERSION = '1.24';

export const PING_HEADERS = {
  'API-Version': API_VERSION,
  'Docker-Experimental': 'false',
  OSType: 'linux',
  'Cache-Control': 'no-cache, no-store, must-revalidate',
  Pragma: 'no-cache',
};

export function systemRoutes(r: Router, version: string): void {
  r.on('GET', '/_ping', async (c, res) => {
    res.writeHead(200, { ...PING_HEADERS, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': 2 });
    res.end(c.req.method === 'HEAD' ? undefined : 'OK');
  });

  r.on('GET', '/version', async (_c, res) => {
    const common = {
      Version: version,
      ApiVersion: API_VERSION,
      MinAPIVersion: MIN_API_VERSION,
      GitCommit: '',
      GoVersion: `node ${process.version}`,
      Os: 'linux',
      Arch: process.arch === 'x64' ? 'amd64' : process.arch,
      KernelVersion: release(),
      BuildTime: '',
    };
    sendJson(res, 200, {
      Platform: { Name: 'hull' },
      Components: [{ Name: 'Engine', Version: version, Details: { ...common } }],
      ...common,
    });
  });

  r.on('GET', '/info', async (c, res) => {
    const i = await systemInfo(c.engine, version);
    const runtimes = Object.fromEntries(i.runtimes.filter((r) => r.usable).map((r) => [r.name, { path: r.path }]));
    sendJson(res, 200, {
      ID: '',
      Containers: i.instances.total,
      ContainersRunning: i.instances.running,
      ContainersPaused: i.instances.paused,
      ContainersStopped: i.instances.stopped,
      Images: i.images,
      Driver: 'overlay',
      DriverStatus: [],
      DockerRootDir: i.root,
      Plugins: { Volume: [], Network: ['bridge', 'host', 'none'], Authorization: null, Log: ['k8s-file'] },
      MemoryLimit: true,
      SwapLimit: true,
      CpuCfsPeriod: true,
      CpuCfsQuota: true,
      CPUShares: true,
      CPUSet: true,
      PidsLimit: true,
      IPv4Forwarding: true,
      Debug: false,
      NFd: 0,
      NGoroutines: 0,
      SystemTime: new Date().toISOString(),
      LoggingDriver: 'k8s-file',
      CgroupDriver: 'cgroupfs',
      CgroupVersion: i.cgroups === 'v2' ? '2' : '1',
      KernelVersion: i.kernel,
      OperatingSystem: 'hull',
      OSVersion: '',
      OSType: 'linux',
      Architecture: process.arch === 'x64' ? 'x86_64' : process.arch,
      IndexServerAddress: 'https://index.docker.io/v1/',
      RegistryConfig: { InsecureRegistryCIDRs: ['127.0.0.0/8'], IndexConfigs: {}, Mirrors: [] },
      NCPU: cpus().length,
      MemTotal: totalmem(),
      Name: hostname(),
      Labels: [],
      ExperimentalBuild: false,
      ServerVersion: version,
      Runtimes: runtimes,
      DefaultRuntime: i.defaultRuntime,
      Swarm: {
        NodeID: '',
        NodeAddr: '',
        LocalNodeState: 'inactive',
        ControlAvailable: false,
        Error: '',
        RemoteManagers: null,
      },
      LiveRestoreEnabled: true,
      Isolation: 'container',
      InitBinary: '',
      SecurityOptions: i.seccomp ? ['name=seccomp,profile=default'] : [],
      Warnings: [],
    });
  });
}
