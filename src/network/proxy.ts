/**
 * Starting and stopping the userland port proxy (./proxy-main.ts) of one attachment. It carries what iptables
 * cannot: published ports on the host's IPv6 addresses (loopback [::1] included, which no DNAT can leave) to
 * the instance's IPv4 address, as docker's docker-proxy does. IPv4 stays with portmap's DNAT rules.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { HullError } from '../common/errors.js';
import type { PortMapping } from '../common/instance.js';
import { killAndWait, processAlive, processArgv } from '../host/proc.js';

/** The argv that runs the proxy: the bundled script next to hull's bundle, or the TypeScript source through tsx. */
function proxyCommand(): string[] {
  const self = fileURLToPath(import.meta.url);
  const here = dirname(self);
  if (self.endsWith('.ts')) {
    const tsx = join(dirname(createRequire(self).resolve('tsx/package.json')), 'dist', 'loader.mjs');
    return [process.execPath, '--import', pathToFileURL(tsx).href, join(here, 'proxy-main.ts')];
  }
  return [process.execPath, join(here, 'port-proxy.cjs')];
}

/** The mappings the proxy serves: IPv6 host addresses, and the IPv6 side ([::]) of mappings on all addresses. */
export function proxiedPorts(ports: PortMapping[]): { hostIp: string; m: PortMapping }[] {
  return ports.flatMap((m) => {
    if (m.hostIp === '') return [{ hostIp: '::', m }];
    if (m.hostIp.includes(':')) return [{ hostIp: m.hostIp, m }];
    return [];
  });
}

/**
 * Start a proxy for `ports` to `target` (the instance's IPv4 address); resolves with its pid once every
 * listener is bound, or 0 when there is nothing to proxy. `owner` (the attachment record's path) goes into its
 * argv, so that a stop never hits a recycled pid and the leak check finds it.
 */
export async function startProxy(owner: string, ports: PortMapping[], target: string): Promise<number> {
  const specs = proxiedPorts(ports).map(
    ({ hostIp, m }) => `${m.protocol}/${hostIp}/${m.hostPort}/${target}/${m.containerPort}`,
  );
  if (specs.length === 0) return 0;
  const [node, ...args] = proxyCommand();
  const child = spawn(node!, [...args, '--for', owner, ...specs], {
    detached: true,
    stdio: ['ignore', 'pipe', 'ignore'],
    cwd: '/',
  });
  const line = await new Promise<string>((resolve) => {
    let buf = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => {
      buf += d;
      if (buf.includes('\n')) resolve(buf.split('\n')[0]!);
    });
    child.once('exit', (code, sig) => resolve(buf.split('\n')[0] || `error: exited with ${code ?? sig}`));
    child.once('error', (e) => resolve(`error: ${e.message}`));
  });
  child.stdout!.destroy();
  child.unref();
  if (line !== 'ready') {
    if (child.pid) await killAndWait([child.pid], 2000);
    throw new HullError(
      `cannot publish ports on the host's IPv6 addresses (${line.replace(/^error: /, '')}); choose other host ports or publish on an IPv4 address only (-p 127.0.0.1:HOST:CTR)`,
    );
  }
  return child.pid!;
}

/** Whether the proxy started for `owner` still runs. */
export function proxyAlive(pid: number, owner: string): boolean {
  return processAlive(pid) && (processArgv(pid) ?? []).includes(owner);
}

/** Stop it and wait until its ports are free again. */
export async function stopProxy(pid: number | undefined, owner: string): Promise<void> {
  if (!pid || !proxyAlive(pid, owner)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + 3000;
  while (processAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  if (processAlive(pid)) await killAndWait([pid], 2000);
}
