/**
 * `POST /containers/create`: docker's container config and HostConfig → hull's CreateRequest. Wrong types are a
 * 400 naming the field; settings hull does not have are refused rather than silently dropped, except those that
 * docker's clients send with their zero values.
 */
import type { MountSpec, Resources, Ulimit } from '../../common/instance.js';
import { parseRestart, parseTmpfs, parseVolume } from '../../common/parse.js';
import type { CreateRequest } from '../../engine/config.js';
import { ApiError } from '../http.js';

type Obj = Record<string, unknown>;

const bad = (field: string, want: string) => new ApiError(400, `invalid ${field}: expected ${want}`);

function obj(v: unknown, field: string): Obj | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw bad(field, 'an object');
  return v as Obj;
}
function str(v: unknown, field: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw bad(field, 'a string');
  return v;
}
function num(v: unknown, field: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(field, 'a number');
  return v;
}
function bool(v: unknown, field: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw bad(field, 'true or false');
  return v;
}
function strs(v: unknown, field: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw bad(field, 'a list of strings');
  return v as string[];
}
function strMap(v: unknown, field: string): Record<string, string> | undefined {
  const o = obj(v, field);
  if (!o) return undefined;
  for (const [k, x] of Object.entries(o)) if (typeof x !== 'string') throw bad(`${field}.${k}`, 'a string');
  return o as Record<string, string>;
}

/** Docker's network modes that mean "the default network". */
const DEFAULT_MODES = new Set(['', 'default', 'bridge']);

/** The create body (with `?name=`) as a CreateRequest. */
export function createRequestOf(body: Obj, name: string | undefined): CreateRequest {
  const image = str(body.Image, 'Image');
  if (!image) throw new ApiError(400, 'config is missing the Image');
  const hc = obj(body.HostConfig, 'HostConfig') ?? {};
  const isolation = str(hc.Isolation, 'HostConfig.Isolation') ?? '';
  if (!['', 'default', 'container', 'process', 'vm'].includes(isolation))
    throw new ApiError(400, `invalid isolation "${isolation}": use container (the default) or vm`);
  const kind = isolation === 'vm' ? 'vm' : 'container';

  const mounts: MountSpec[] = (strs(hc.Binds, 'HostConfig.Binds') ?? []).map(parseVolume);
  for (const [target, opts] of Object.entries(strMap(hc.Tmpfs, 'HostConfig.Tmpfs') ?? {}))
    mounts.push(parseTmpfs(opts ? `${target}:${opts}` : target));
  const ms = hc.Mounts;
  if (ms !== undefined && ms !== null && !Array.isArray(ms)) throw bad('HostConfig.Mounts', 'a list');
  for (const [i, m] of ((ms as unknown[] | null) ?? []).entries()) {
    const mo = obj(m, `HostConfig.Mounts[${i}]`) ?? {};
    const type = str(mo.Type, `HostConfig.Mounts[${i}].Type`) ?? 'volume';
    const target = str(mo.Target, `HostConfig.Mounts[${i}].Target`) ?? '';
    if (type === 'bind' || type === 'volume') {
      const source = str(mo.Source, `HostConfig.Mounts[${i}].Source`) ?? '';
      if (type === 'bind' && !source.startsWith('/'))
        throw new ApiError(400, `invalid mount config for type "bind": the source must be an absolute path`);
      if (type === 'volume' && source.startsWith('/'))
        throw new ApiError(400, `invalid mount config for type "volume": the source must be a volume name`);
      const ro = bool(mo.ReadOnly, `HostConfig.Mounts[${i}].ReadOnly`) ? ':ro' : '';
      mounts.push(parseVolume(source ? `${source}:${target}${ro}` : target));
    } else if (type === 'tmpfs') {
      const t = obj(mo.TmpfsOptions, `HostConfig.Mounts[${i}].TmpfsOptions`) ?? {};
      const opts = [
        ...(num(t.SizeBytes, 'TmpfsOptions.SizeBytes') ? [`size=${t.SizeBytes}`] : []),
        ...(num(t.Mode, 'TmpfsOptions.Mode') ? [`mode=${(t.Mode as number).toString(8)}`] : []),
      ];
      mounts.push(parseTmpfs(opts.length ? `${target}:${opts.join(',')}` : target));
    } else {
      throw new ApiError(400, `mounts of type "${type}" are not supported yet: use bind, volume or tmpfs`);
    }
  }
  // Config.Volumes (docker run -v /path): anonymous volumes where no mount is given
  for (const target of Object.keys(obj(body.Volumes, 'Volumes') ?? {}))
    if (!mounts.some((m) => m.target === target)) mounts.push(parseVolume(target));

  const resources: Resources = {};
  const memory = num(hc.Memory, 'HostConfig.Memory');
  if (memory) resources.memory = memory;
  const swap = num(hc.MemorySwap, 'HostConfig.MemorySwap');
  if (swap) resources.memorySwap = swap;
  const nano = num(hc.NanoCpus, 'HostConfig.NanoCpus');
  if (nano) resources.cpus = nano / 1e9;
  const shares = num(hc.CpuShares, 'HostConfig.CpuShares');
  if (shares) resources.cpuShares = shares;
  const cpuset = str(hc.CpusetCpus, 'HostConfig.CpusetCpus');
  if (cpuset) resources.cpusetCpus = cpuset;
  const pids = num(hc.PidsLimit, 'HostConfig.PidsLimit');
  if (pids) resources.pidsLimit = pids;
  const blkio = num(hc.BlkioWeight, 'HostConfig.BlkioWeight');
  if (blkio) resources.blkioWeight = blkio;

  const rp = obj(hc.RestartPolicy, 'HostConfig.RestartPolicy');
  const rpName = str(rp?.Name, 'HostConfig.RestartPolicy.Name') ?? '';
  const rpMax = num(rp?.MaximumRetryCount, 'HostConfig.RestartPolicy.MaximumRetryCount') ?? 0;
  const restart = rpName ? parseRestart(rpName === 'on-failure' && rpMax ? `${rpName}:${rpMax}` : rpName) : undefined;

  const ulimits: Ulimit[] = [];
  const ul = hc.Ulimits;
  if (ul !== undefined && ul !== null && !Array.isArray(ul)) throw bad('HostConfig.Ulimits', 'a list');
  for (const [i, u] of ((ul as unknown[] | null) ?? []).entries()) {
    const uo = obj(u, `HostConfig.Ulimits[${i}]`) ?? {};
    ulimits.push({
      type: str(uo.Name, `HostConfig.Ulimits[${i}].Name`) ?? '',
      soft: num(uo.Soft, `HostConfig.Ulimits[${i}].Soft`) ?? 0,
      hard: num(uo.Hard, `HostConfig.Ulimits[${i}].Hard`) ?? 0,
    });
  }

  const publish: string[] = [];
  for (const [port, bindings] of Object.entries(obj(hc.PortBindings, 'HostConfig.PortBindings') ?? {})) {
    if (bindings !== null && !Array.isArray(bindings)) throw bad(`HostConfig.PortBindings.${port}`, 'a list');
    const list = (bindings as unknown[] | null) ?? [];
    for (const b of list.length ? list : [{}]) {
      const bo = obj(b, `HostConfig.PortBindings.${port}`) ?? {};
      const ip = str(bo.HostIp, 'HostIp') ?? '';
      const hp = str(bo.HostPort, 'HostPort') ?? '';
      publish.push(ip ? `${ip}:${hp}:${port}` : hp ? `${hp}:${port}` : port);
    }
  }

  const mode = str(hc.NetworkMode, 'HostConfig.NetworkMode') ?? '';
  const endpoints = obj(obj(body.NetworkingConfig, 'NetworkingConfig')?.EndpointsConfig, 'EndpointsConfig') ?? {};
  const networks: string[] = [];
  if (!DEFAULT_MODES.has(mode)) networks.push(mode);
  let ip: string | undefined;
  const aliases: string[] = [];
  for (const [net, ep] of Object.entries(endpoints)) {
    if (!DEFAULT_MODES.has(net) && !networks.includes(net)) networks.push(net);
    const eo = obj(ep, `EndpointsConfig.${net}`) ?? {};
    const v4 = str(obj(eo.IPAMConfig, 'IPAMConfig')?.IPv4Address, 'IPAMConfig.IPv4Address');
    if (v4 && ip === undefined) ip = v4;
    aliases.push(...(strs(eo.Aliases, `EndpointsConfig.${net}.Aliases`) ?? []));
  }

  const hco = obj(body.Healthcheck, 'Healthcheck');
  let health: CreateRequest['health'];
  if (hco) {
    const test = strs(hco.Test, 'Healthcheck.Test');
    const ms = (k: string) => {
      const v = num(hco[k], `Healthcheck.${k}`);
      return v ? Math.round(v / 1e6) : undefined;
    };
    const [intervalMs, timeoutMs, startPeriodMs] = [ms('Interval'), ms('Timeout'), ms('StartPeriod')];
    const retries = num(hco.Retries, 'Healthcheck.Retries');
    health =
      test?.[0] === 'NONE'
        ? { disable: true }
        : {
            ...(test?.length ? { test } : {}),
            ...(intervalMs ? { intervalMs } : {}),
            ...(timeoutMs ? { timeoutMs } : {}),
            ...(startPeriodMs ? { startPeriodMs } : {}),
            ...(retries ? { retries } : {}),
          };
  }
  const userns = str(hc.UsernsMode, 'HostConfig.UsernsMode') ?? '';
  if (userns !== '' && userns !== 'host') throw new ApiError(400, `invalid UsernsMode "${userns}": use host`);
  const labels = strMap(body.Labels, 'Labels') ?? {};
  const entrypoint = strs(body.Entrypoint, 'Entrypoint');
  const stopTimeout = num(body.StopTimeout, 'StopTimeout');
  const runtime = str(hc.Runtime, 'HostConfig.Runtime');
  const user = str(body.User, 'User');
  const workdir = str(body.WorkingDir, 'WorkingDir');
  const hostname = str(body.Hostname, 'Hostname');
  const stopSignal = str(body.StopSignal, 'StopSignal');
  const dns = strs(hc.Dns, 'HostConfig.Dns');
  const dnsSearch = strs(hc.DnsSearch, 'HostConfig.DnsSearch');
  const extraHosts = strs(hc.ExtraHosts, 'HostConfig.ExtraHosts');
  const groupAdd = strs(hc.GroupAdd, 'HostConfig.GroupAdd');
  return {
    kind,
    ...(kind === 'vm' ? { vm: {} } : {}),
    image,
    ...(name ? { name } : {}),
    command: strs(body.Cmd, 'Cmd') ?? [],
    // docker's --entrypoint "" arrives as [""]: reset the image's entrypoint
    ...(entrypoint ? { entrypoint: entrypoint.filter((s, i) => s !== '' || i > 0) } : {}),
    env: (strs(body.Env, 'Env') ?? []).filter((e) => e.includes('=')),
    ...(user ? { user } : {}),
    ...(workdir ? { workdir } : {}),
    ...(hostname ? { hostname } : {}),
    tty: bool(body.Tty, 'Tty') ?? false,
    stdin: bool(body.OpenStdin, 'OpenStdin') ?? false,
    mounts,
    readOnly: bool(hc.ReadonlyRootfs, 'HostConfig.ReadonlyRootfs') ?? false,
    privileged: bool(hc.Privileged, 'HostConfig.Privileged') ?? false,
    capAdd: strs(hc.CapAdd, 'HostConfig.CapAdd') ?? [],
    capDrop: strs(hc.CapDrop, 'HostConfig.CapDrop') ?? [],
    securityOpt: strs(hc.SecurityOpt, 'HostConfig.SecurityOpt') ?? [],
    ...(groupAdd?.length ? { groupAdd } : {}),
    userns: null,
    resources,
    ...(stopSignal ? { stopSignal } : {}),
    ...(stopTimeout !== undefined ? { stopTimeout } : {}),
    ...(restart ? { restart } : {}),
    autoRemove: bool(hc.AutoRemove, 'HostConfig.AutoRemove') ?? false,
    ...(bool(hc.Init, 'HostConfig.Init') ? { init: true } : {}),
    ...(health ? { health } : {}),
    labels,
    ...(networks.length ? { networks } : {}),
    ...(ip ? { ip } : {}),
    ...(aliases.length ? { aliases } : {}),
    ...(publish.length ? { publish } : {}),
    ...(bool(hc.PublishAllPorts, 'HostConfig.PublishAllPorts') ? { publishAll: true } : {}),
    ...(dns?.length ? { dns } : {}),
    ...(dnsSearch?.length ? { dnsSearch } : {}),
    ...(extraHosts?.length ? { addHost: extraHosts } : {}),
    ...(runtime ? { runtime } : {}),
    ulimits,
  };
}
