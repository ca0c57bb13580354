/**
 * Name resolution between instances: aardvark-dns, the server podman's netavark uses. One aardvark process
 * per hull root serves every network of that root: its config dir holds one file per network (named after
 * the network), whose first line lists the addresses to listen on (the bridge's gateway address) and whose
 * other lines are the records "ID IPV4S IPV6S NAMES [UPSTREAMS]". It answers A queries for those names only
 * to clients on the same network (it matches the query's source address), forwards other queries to the
 * upstream servers (the instance's --dns, or the host's resolv.conf), and re-reads its files on SIGHUP.
 * `run` daemonizes and leaves its pid in <config>/aardvark.pid. On dual-stack networks it answers AAAA queries
 * with the instances' IPv6 addresses too.
 *
 * Internal networks get a second aardvark process of their own (config dir aardvark-internal/), started with
 * AARDVARK_NO_PROXY set: it answers instance names and never forwards (docker's embedded DNS does not forward
 * on --internal networks either); other names get NXDOMAIN. aardvark 1.4 has no per-network switch for this.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../common/fsutil.js';
import { HostSupportError } from '../common/errors.js';
import { processAlive, processArgv, runProgram } from '../host/proc.js';
import { hullEnv } from '../common/env.js';

export const AARDVARK_CANDIDATES = [
  '/usr/lib/podman/aardvark-dns',
  '/usr/libexec/podman/aardvark-dns',
  '/usr/local/libexec/podman/aardvark-dns',
];

export function aardvarkBinary(): string {
  const env = hullEnv('HULL_AARDVARK');
  if (env) return env;
  const found = AARDVARK_CANDIDATES.find((p) => existsSync(p));
  if (!found)
    throw new HostSupportError(
      `aardvark-dns is not installed (looked in ${AARDVARK_CANDIDATES.join(', ')}); install the aardvark-dns package, or create the network with --disable-dns`,
    );
  return found;
}

export interface DnsRecord {
  id: string;
  ipv4: string[];
  ipv6: string[];
  names: string[];
  /** upstream servers for this instance's other queries (--dns) */
  upstreams: string[];
}

export class Aardvark {
  /** noProxy: never forward queries for names it does not know (internal networks) */
  constructor(
    readonly dir: string,
    readonly noProxy = false,
  ) {}

  private file(network: string): string {
    return join(this.dir, network);
  }

  private get pidFile(): string {
    return join(this.dir, 'aardvark.pid');
  }

  /** The records of a network's file (empty when there is none). */
  records(network: string): DnsRecord[] {
    let text: string;
    try {
      text = readFileSync(this.file(network), 'utf8');
    } catch {
      return [];
    }
    return text
      .split('\n')
      .slice(1)
      .filter(Boolean)
      .map((l) => {
        const [id = '', v4 = '', v6 = '', names = '', ups = ''] = l.split(' ');
        return {
          id,
          ipv4: v4.split(',').filter(Boolean),
          ipv6: v6.split(',').filter(Boolean),
          names: names.split(',').filter(Boolean),
          upstreams: ups.split(',').filter(Boolean),
        };
      });
  }

  /**
   * Write a network's file (listen address + records); an empty record list removes the file, unless `idle`
   * (the network's bridge is kept up with no instance on it): then the server keeps listening on its address.
   */
  write(network: string, listen: string, records: DnsRecord[], idle = false): void {
    if (records.length === 0 && !(idle && listen)) {
      rmSync(this.file(network), { force: true });
      return;
    }
    const lines = [
      listen,
      ...records.map((r) =>
        [
          r.id,
          r.ipv4.join(','),
          r.ipv6.join(','),
          r.names.join(','),
          ...(r.upstreams.length ? [r.upstreams.join(',')] : []),
        ].join(' '),
      ),
    ];
    writeFileAtomic(this.file(network), lines.join('\n') + '\n', 0o644);
  }

  /** The running server's pid, or 0. */
  pid(): number {
    let pid = 0;
    try {
      pid = Number(readFileSync(this.pidFile, 'utf8').trim());
    } catch {
      return 0;
    }
    if (!processAlive(pid)) return 0;
    const argv = processArgv(pid) ?? [];
    return argv.some((a) => a.endsWith('aardvark-dns')) && argv.includes(this.dir) ? pid : 0;
  }

  private networkFiles(): string[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir).filter((f) => f !== 'aardvark.pid' && !f.startsWith('.'));
  }

  /**
   * Make the server match the files: start it (and wait until it listens on `waitFor`, a gateway address, or hand
   * that wait to `deferWait`), tell a running one to reload, or stop it when no network has records left.
   */
  async sync(waitFor?: string, deferWait?: (listening: Promise<void>) => void): Promise<void> {
    const pid = this.pid();
    if (this.networkFiles().length === 0) {
      if (pid) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          /* gone */
        }
        for (let i = 0; i < 100 && processAlive(pid); i++) await new Promise((r) => setTimeout(r, 10));
      }
      rmSync(this.dir, { recursive: true, force: true });
      return;
    }
    if (pid) {
      process.kill(pid, 'SIGHUP');
    } else {
      // run forks a daemon and exits; port 53 on the gateway addresses, as the resolv.conf points there
      await runProgram(aardvarkBinary(), ['--config', this.dir, '-p', '53', 'run'], {
        env: {
          ...process.env,
          RUST_LOG: process.env.RUST_LOG ?? 'warn',
          ...(this.noProxy ? { AARDVARK_NO_PROXY: '1' } : {}),
        },
        timeoutMs: 10_000,
        hint: 'aardvark-dns (the DNS server of hull networks) could not start',
      });
    }
    if (!waitFor) return;
    // the caller may wait later (until the instance's process starts), overlapping the runtime's create
    if (deferWait) deferWait(waitListening(waitFor, 53, 3000));
    else await waitListening(waitFor, 53, 3000);
  }
}

/** Poll /proc/net/udp until something listens on ip:port (aardvark binds asynchronously after start or SIGHUP). */
async function waitListening(ip: string, port: number, timeoutMs: number): Promise<void> {
  const hex =
    ip
      .split('.')
      .map((p) => Number(p).toString(16).padStart(2, '0').toUpperCase())
      .reverse()
      .join('') +
    ':' +
    port.toString(16).toUpperCase().padStart(4, '0');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (readFileSync('/proc/net/udp', 'utf8').includes(` ${hex} `)) return;
    } catch {
      return;
    }
    if (Date.now() > deadline) return; // name lookups will fail, but the instance itself works: not fatal
    await new Promise((r) => setTimeout(r, 10));
  }
}
