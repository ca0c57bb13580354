/**
 * The name-resolution files hull writes into an instance (a container's bind-mounted /etc/hosts and
 * /etc/resolv.conf, a VM's through its agent), from the instance's networks and the host's own files.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { InstanceNetwork } from '../common/instance.js';

/**
 * /etc/hosts of an instance: loopback names plus its hostname; on hull networks its own addresses carry its
 * hostname and name instead of 127.0.1.1, and --add-host entries follow.
 */
export function hostsFile(hostname: string, network: string, net?: InstanceNetwork, name?: string): string {
  if (network === 'host') {
    try {
      return readFileSync('/etc/hosts', 'utf8');
    } catch {
      /* fall through to the default */
    }
  }
  const own = (net?.attachments ?? [])
    .filter((a) => a.address)
    .map((a) => `${a.address.split('/')[0]}\t${[...new Set([hostname, ...(name ? [name] : [])])].join(' ')}`);
  return [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'ff00::0\tip6-mcastprefix',
    'ff02::1\tip6-allnodes',
    'ff02::2\tip6-allrouters',
    ...(own.length > 0 ? own : [`127.0.1.1\t${hostname}`]),
    ...(net?.extraHosts ?? []).map(([h, ip]) => `${ip}\t${h}`),
    '',
  ].join('\n');
}

/**
 * /etc/resolv.conf of an instance: the host's. In a private network namespace loopback
 * nameservers (e.g. systemd-resolved's 127.0.0.53) are unreachable, so they are dropped (the
 * resolved upstream list is used when there is one) and Google's public servers stand in when
 * nothing is left, as docker does.
 */
export function resolvConfFile(network: string, net?: InstanceNetwork): string {
  if (net && net.nameservers.length > 0) {
    // the networks' DNS servers (which know the other instances' names), or --dns
    return [
      ...(net.searches.length > 0 ? [`search ${net.searches.join(' ')}`] : []),
      ...net.nameservers.map((n) => `nameserver ${n}`),
      '',
    ].join('\n');
  }
  const read = (p: string): string | null => {
    try {
      return readFileSync(p, 'utf8');
    } catch {
      return null;
    }
  };
  const host = read('/etc/resolv.conf') ?? '';
  if (network === 'host') return host;
  const isLoopbackNs = (l: string): boolean => /^\s*nameserver\s+(127\.|::1\s*$)/.test(l);
  let text = host;
  if (host.split('\n').some(isLoopbackNs)) text = read('/run/systemd/resolve/resolv.conf') ?? host;
  let lines = text.split('\n').filter((l) => !isLoopbackNs(l));
  if (net && net.searches.length > 0)
    lines = [`search ${net.searches.join(' ')}`, ...lines.filter((l) => !/^\s*(search|domain)\s/.test(l))];
  if (!lines.some((l) => /^\s*nameserver\s/.test(l))) lines.push('nameserver 8.8.8.8', 'nameserver 8.8.4.4');
  return lines.join('\n').replace(/\n*$/, '\n');
}

/**
 * `network connect`/`disconnect` of a running container: add the lines of its addresses on the new network (its
 * hostname and name, as at start), or drop the lines of the addresses it had on the network it left. The file is
 * rewritten in place (same inode): it is bind-mounted into the container, and other lines (the user's) stay.
 */
export function updateHostsFile(
  path: string,
  add: { ips: string[]; names: string[] } | null,
  remove: string[] = [],
): void {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return; // no file of hull's (a VM, or --network host)
  }
  const drop = new Set([...remove, ...(add?.ips ?? [])]);
  const lines = text
    .split('\n')
    .filter((l, i, all) => (i < all.length - 1 || l !== '') && !drop.has(l.split(/\s/)[0]!));
  for (const ip of add?.ips ?? []) lines.push(`${ip}\t${add!.names.join(' ')}`);
  writeFileSync(path, lines.map((l) => `${l}\n`).join(''));
}
