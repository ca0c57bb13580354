/**
 * hull's userland port proxy (bundled as dist/port-proxy.cjs; run from source with tsx in development), the
 * counterpart of docker's docker-proxy: published ports on the host's IPv6 addresses ([::1] and the host's
 * own), which iptables DNAT cannot send to an IPv4-only instance, are accepted here and relayed to the
 * instance's IPv4 address. One process per instance and network; ./proxy.ts starts and stops it.
 *
 *   port-proxy --for RECORD PROTO/HOSTIP/HOSTPORT/TARGET/TARGETPORT ...
 *
 * RECORD names the attachment record it belongs to (for the leak check and for a safe stop). Once every
 * listener is bound it writes "ready" on stdout; on a bind failure it writes "error: MESSAGE" and exits 1.
 * SIGTERM closes the listeners and ends it.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { connect, createServer, type Server } from 'node:net';

interface Spec {
  protocol: 'tcp' | 'udp';
  hostIp: string;
  hostPort: number;
  target: string;
  targetPort: number;
}

/** A UDP "connection" is forgotten after this long without traffic (docker-proxy's UDP timeout). */
const UDP_IDLE_MS = 90_000;

function parseSpec(s: string): Spec {
  const [protocol, hostIp, hostPort, target, targetPort] = s.split('/');
  if ((protocol !== 'tcp' && protocol !== 'udp') || !hostIp || !target) throw new Error(`bad proxy spec ${s}`);
  return { protocol, hostIp, hostPort: Number(hostPort), target, targetPort: Number(targetPort) };
}

function tcp(spec: Spec): Promise<Server> {
  const srv = createServer({ allowHalfOpen: true }, (client) => {
    const upstream = connect({ host: spec.target, port: spec.targetPort, allowHalfOpen: true });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', () => upstream.end());
    upstream.on('close', () => client.end());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen({ host: spec.hostIp, port: spec.hostPort, ipv6Only: spec.hostIp.includes(':'), exclusive: true }, () =>
      resolve(srv),
    );
  });
}

function udp(spec: Spec): Promise<Socket> {
  const listener = createSocket({ type: spec.hostIp.includes(':') ? 'udp6' : 'udp4', ipv6Only: true });
  const clients = new Map<string, { sock: Socket; timer: NodeJS.Timeout }>();
  listener.on('message', (msg: Buffer, from: RemoteInfo) => {
    const key = `${from.address}/${from.port}`;
    let c = clients.get(key);
    if (!c) {
      const sock = createSocket(spec.target.includes(':') ? 'udp6' : 'udp4');
      sock.on('message', (reply) => {
        listener.send(reply, from.port, from.address);
        c?.timer.refresh();
      });
      sock.on('error', () => undefined);
      const timer = setTimeout(() => {
        clients.delete(key);
        sock.close();
      }, UDP_IDLE_MS);
      c = { sock, timer };
      clients.set(key, c);
    }
    c.timer.refresh();
    c.sock.send(msg, spec.targetPort, spec.target);
  });
  return new Promise((resolve, reject) => {
    listener.once('error', reject);
    listener.bind({ address: spec.hostIp, port: spec.hostPort, exclusive: true }, () => {
      listener.removeListener('error', reject);
      listener.on('error', () => undefined);
      resolve(listener);
    });
  });
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] !== '--for' || args.length < 3) {
    process.stderr.write('usage: port-proxy --for RECORD PROTO/HOSTIP/HOSTPORT/TARGET/TARGETPORT ...\n');
    process.exit(2);
  }
  process.stdout.on('error', () => undefined); // the starter stops reading once it has the first line
  const closers: (() => void)[] = [];
  try {
    for (const s of args.slice(2).map(parseSpec)) {
      if (s.protocol === 'tcp') {
        const srv = await tcp(s);
        closers.push(() => srv.close());
      } else {
        const sock = await udp(s);
        closers.push(() => sock.close());
      }
    }
  } catch (e) {
    process.stdout.write(`error: ${(e as Error).message}\n`);
    process.exit(1);
  }
  const stop = () => {
    for (const c of closers) c();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', () => undefined);
  process.stdout.write('ready\n');
}

void main();
