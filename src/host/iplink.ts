/**
 * Typed wrappers over iproute2 for what hull's networks need beyond the CNI plugins: deleting a network's
 * bridge (the bridge plugin never deletes it) and reading host routes (subnet conflicts with the host's own
 * networks).
 */
import { existsSync, readFileSync } from 'node:fs';
import { runProgram } from './proc.js';

/** Whether hull's network namespace has the link (sysfs shows the links of the namespace that mounted it). */
export async function linkExists(name: string): Promise<boolean> {
  if (!/^[^/\0]{1,15}$/.test(name) || name === '.' || name === '..') return false;
  return existsSync(`/sys/class/net/${name}`);
}

/** Delete a link; a missing one is fine (idempotent). */
export async function deleteLink(name: string): Promise<void> {
  if (!(await linkExists(name))) return;
  await runProgram('ip', ['link', 'delete', 'dev', name], { allowFailure: true });
}

export interface RouteInfo {
  /** "10.89.1.0/24", or "default" */
  dst: string;
  dev?: string;
}

/** The host's IPv4 routes of the main table. */
export async function listRoutes(): Promise<RouteInfo[]> {
  // /proc/net/route is the main table (no program start); iproute2 when it cannot be read
  try {
    return parseProcRoutes(readFileSync('/proc/net/route', 'utf8'));
  } catch {
    /* below */
  }
  const r = await runProgram('ip', ['-j', '-4', 'route', 'show', 'table', 'main']);
  return (JSON.parse(r.stdout || '[]') as { dst: string; dev?: string }[]).map((x) => ({
    dst: x.dst,
    ...(x.dev ? { dev: x.dev } : {}),
  }));
}

/** /proc/net/route (hex, host byte order: little-endian here) → routes as `ip route` names them. */
export function parseProcRoutes(text: string): RouteInfo[] {
  const ip = (hex: string) => {
    const n = Number.parseInt(hex, 16);
    return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255].join('.');
  };
  const out: RouteInfo[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [dev, dst, , , , , , mask] = f as [string, string, string, string, string, string, string, string];
    const prefix = Number.parseInt(mask, 16).toString(2).replace(/0/g, '').length;
    out.push({ dst: prefix === 0 && dst === '00000000' ? 'default' : `${ip(dst)}/${prefix}`, dev });
  }
  return out;
}
