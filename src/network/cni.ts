/**
 * CNI invocation per the spec (containernetworking/cni SPEC.md, version 1.0.0): a network configuration
 * list is a chain of plugins run in order for ADD and CHECK, each given the previous plugin's result as
 * `prevResult`, and in reverse order for DEL, with the ADD result as `prevResult`. Parameters travel in
 * CNI_* environment variables, the plugin's configuration on stdin, the result (or an error object) on
 * stdout. Capability arguments (portMappings, ...) go to the plugins that declare the capability, as
 * `runtimeConfig`. The plugins themselves are Debian's containernetworking-plugins in /usr/lib/cni.
 *
 * The caller keeps the ADD result (see ./manager.ts's cache) because DEL needs it and the plugins'
 * own state (host-local's leases, iptables chains named after the container id) is keyed to it.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { HostSupportError, HullError } from '../common/errors.js';
import { runProgram } from '../host/proc.js';
import { hullEnv } from '../common/env.js';

export const CNI_VERSION = '1.0.0';

/** Where Debian's containernetworking-plugins live; HULL_CNI_PATH overrides (a colon-separated list). */
export function cniPath(): string[] {
  return (hullEnv('HULL_CNI_PATH') ?? '/usr/lib/cni:/opt/cni/bin').split(':').filter(Boolean);
}

export interface CniPluginConf {
  type: string;
  /** capabilities the plugin accepts through runtimeConfig, e.g. { portMappings: true } */
  capabilities?: Record<string, boolean>;
  [k: string]: unknown;
}

export interface CniConfList {
  cniVersion: string;
  name: string;
  plugins: CniPluginConf[];
}

export interface CniRuntime {
  containerId: string;
  /** path of the network namespace */
  netns: string;
  ifname: string;
  /** CNI_ARGS, e.g. { IP: '10.89.1.5' } */
  args?: Record<string, string>;
  /** capability arguments by name (portMappings, ...) */
  capabilityArgs?: Record<string, unknown>;
}

export interface CniResult {
  cniVersion?: string;
  interfaces?: { name: string; mac?: string; sandbox?: string }[];
  ips?: { address: string; gateway?: string; interface?: number }[];
  routes?: { dst: string; gw?: string }[];
  dns?: { nameservers?: string[] };
}

/** A plugin's error object, or its failure without one. */
export class CniError extends HullError {
  override readonly code: string = 'HULL_NETWORK';
  constructor(
    readonly plugin: string,
    readonly command: string,
    msg: string,
    readonly cniCode?: number,
  ) {
    super(`network plugin ${plugin} failed on ${command}: ${msg}`);
  }
}

function findPlugin(type: string): string {
  if (!/^[a-z0-9_-]+$/i.test(type)) throw new HullError(`invalid CNI plugin type "${type}"`);
  for (const dir of cniPath()) {
    const p = join(dir, type);
    if (existsSync(p)) return p;
  }
  throw new HostSupportError(
    `the CNI plugin "${type}" is not installed (looked in ${cniPath().join(', ')}); install containernetworking-plugins`,
  );
}

/** The configuration one plugin of the list gets on stdin for `command`. */
export function pluginConfig(
  list: CniConfList,
  plugin: CniPluginConf,
  rt: CniRuntime,
  prevResult?: CniResult,
): Record<string, unknown> {
  const { capabilities, ...rest } = plugin;
  const conf: Record<string, unknown> = { ...rest, cniVersion: list.cniVersion, name: list.name };
  if (capabilities && rt.capabilityArgs) {
    const runtimeConfig: Record<string, unknown> = {};
    for (const [cap, on] of Object.entries(capabilities))
      if (on && rt.capabilityArgs[cap] !== undefined) runtimeConfig[cap] = rt.capabilityArgs[cap];
    if (Object.keys(runtimeConfig).length > 0) conf.runtimeConfig = runtimeConfig;
  }
  if (prevResult) conf.prevResult = prevResult;
  return conf;
}

async function invoke(
  command: 'ADD' | 'DEL' | 'CHECK',
  list: CniConfList,
  plugin: CniPluginConf,
  rt: CniRuntime,
  prevResult?: CniResult,
): Promise<CniResult | undefined> {
  const bin = findPlugin(plugin.type);
  const args = Object.entries(rt.args ?? {}).map(([k, v]) => `${k}=${v}`);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: command,
    CNI_CONTAINERID: rt.containerId,
    CNI_NETNS: rt.netns,
    CNI_IFNAME: rt.ifname,
    CNI_PATH: cniPath().join(':'),
    ...(args.length > 0 ? { CNI_ARGS: ['IgnoreUnknown=1', ...args].join(';') } : {}),
  };
  const r = await runProgram(bin, [], {
    input: JSON.stringify(pluginConfig(list, plugin, rt, prevResult)),
    env,
    allowFailure: true,
    timeoutMs: 60_000,
  });
  if (r.status !== 0) {
    let msg = (r.stderr || r.stdout).trim() || `exit status ${r.status ?? r.signal}`;
    let code: number | undefined;
    try {
      const e = JSON.parse(r.stdout) as { code?: number; msg?: string; details?: string };
      msg = [e.msg, e.details].filter(Boolean).join(': ') || msg;
      code = e.code;
    } catch {
      /* not an error object */
    }
    throw new CniError(plugin.type, command, msg, code);
  }
  if (command !== 'ADD') return undefined;
  try {
    return JSON.parse(r.stdout) as CniResult;
  } catch {
    throw new CniError(plugin.type, command, `unreadable result: ${r.stdout.slice(0, 200)}`);
  }
}

/**
 * ADD the whole list. If a plugin fails, the ones before it are DELeted again (in reverse order), as the
 * spec asks of runtimes, so a failed ADD leaves nothing behind.
 */
export async function cniAdd(list: CniConfList, rt: CniRuntime): Promise<CniResult> {
  let prev: CniResult | undefined;
  const done: CniPluginConf[] = [];
  try {
    for (const p of list.plugins) {
      prev = await invoke('ADD', list, p, rt, prev);
      done.push(p);
    }
  } catch (e) {
    for (const p of done.reverse()) await invoke('DEL', list, p, rt, prev).catch(() => undefined);
    throw e;
  }
  return prev ?? {};
}

/**
 * DEL the list in reverse order with the cached ADD result. Every plugin is asked even if one fails (each
 * releases its own part: leases, iptables rules, the veth); the first failure is thrown at the end.
 */
export async function cniDel(list: CniConfList, rt: CniRuntime, prevResult?: CniResult): Promise<void> {
  let first: unknown;
  for (const p of [...list.plugins].reverse()) {
    try {
      await invoke('DEL', list, p, rt, prevResult);
    } catch (e) {
      first ??= e;
    }
  }
  if (first) throw first;
}

/**
 * CHECK the list with the cached ADD result. `skip` names plugins whose CHECK is known not to work
 * here: portmap 1.1.1 fails CHECK on IPv4-only setups (it insists on IPv6 chains).
 */
export async function cniCheck(
  list: CniConfList,
  rt: CniRuntime,
  prevResult: CniResult,
  skip: ReadonlySet<string> = new Set(['portmap']),
): Promise<void> {
  for (const p of list.plugins) {
    if (skip.has(p.type)) continue;
    await invoke('CHECK', list, p, rt, prevResult);
  }
}
