/**
 * Typed wrappers over iproute2 for what hull's networks need beyond the CNI plugins: deleting a network's
 * bridge (the bridge plugin never deletes it) and reading host routes (subnet conflicts with the host's own
 * networks).
 */
import { runProgram } from './proc.js';

export async function linkExists(name: string): Promise<boolean> {
  const r = await runProgram('ip', ['link', 'show', 'dev', name], { allowFailure: true });
  return r.status === 0;
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
  const r = await runProgram('ip', ['-j', '-4', 'route', 'show', 'table', 'main']);
  return (JSON.parse(r.stdout || '[]') as { dst: string; dev?: string }[]).map((x) => ({
    dst: x.dst,
    ...(x.dev ? { dev: x.dev } : {}),
  }));
}
