/** `hull network …` and `hull port`: network definitions, connecting instances, published ports. */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { pruneNetworks } from '../../engine/prune.js';
import { formatItems, inspectOutput, parseFormat, table, ago } from '../format.js';
import { networkContext, networkHeaders } from '../contexts.js';
import { parseLabels, parseNumber } from '../../common/parse.js';
import { InvalidArgumentError } from '../../common/errors.js';
import {
  DEFAULT_NETWORK,
  connectInstance,
  disconnectInstance,
  networkUsers,
  publishedPorts,
  removeNetwork,
} from '../../engine/networking.js';
import { removeInstance } from '../../engine/lifecycle/remove.js';
import { refresh } from '../../engine/lifecycle/exit.js';
import { describeNetwork } from '../../engine/describe.js';

/** A host address as `hull port` prints it: IPv6 in brackets, all IPv4 addresses as 0.0.0.0. */
const hostAddr = (ip: string) => (ip.includes(':') ? `[${ip}]` : ip || '0.0.0.0');

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function registerNetworkCommands(program: Command, ctx: CliContext): void {
  const network = program.command('network').description('manage virtual networks');

  network
    .command('create')
    .description('create a network (a bridge with NAT, DNS between its instances)')
    .argument('<name>')
    .option(
      '--subnet <cidr>',
      'subnet, e.g. 10.89.1.0/24 (default: a free /24 from 10.89.0.0/16); with --ipv6 also an IPv6 one, e.g. fd00:abcd::/64 (repeatable)',
      collect,
    )
    .option('--gateway <ip>', 'gateway address (default: the first address of the subnet; repeatable)', collect)
    .option('--ipv6', 'dual-stack: an IPv6 subnet too (the IPv6 --subnet, or a free ULA /64)')
    .option('--ip-range <cidr>', 'lease addresses only from this part of the subnet')
    .option('--internal', 'no outbound route: instances reach only each other')
    .option('--mtu <bytes>', "MTU of the bridge and the instances' interfaces")
    .option('--disable-dns', "no DNS server: instances do not resolve each other's names")
    .option('-d, --driver <driver>', 'bridge (the only one)')
    .option('-l, --label <k=v>', 'set a label (repeatable)', collect)
    .action(
      async (
        name: string,
        o: {
          subnet?: string[];
          gateway?: string[];
          ipv6?: boolean;
          ipRange?: string;
          internal?: boolean;
          mtu?: string;
          disableDns?: boolean;
          driver?: string;
          label?: string[];
        },
      ) => {
        if (o.driver !== undefined && o.driver !== 'bridge')
          throw new InvalidArgumentError(`unknown network driver "${o.driver}": only bridge exists`);
        // one IPv4 and one IPv6 --subnet/--gateway at most, told apart by their colons (as docker does)
        const byFamily = (list: string[] | undefined, what: string) => {
          const v4 = (list ?? []).filter((x) => !x.includes(':'));
          const v6 = (list ?? []).filter((x) => x.includes(':'));
          if (v4.length > 1 || v6.length > 1)
            throw new InvalidArgumentError(`at most one IPv4 and one IPv6 ${what} per network`);
          return { v4: v4[0], v6: v6[0] };
        };
        const subnet = byFamily(o.subnet, '--subnet');
        const gateway = byFamily(o.gateway, '--gateway');
        if (gateway.v4 !== undefined && subnet.v4 === undefined)
          throw new InvalidArgumentError('--gateway needs --subnet');
        if (o.ipRange !== undefined && subnet.v4 === undefined)
          throw new InvalidArgumentError('--ip-range needs --subnet');
        const engine = await ctx.engine();
        const def = await engine.networks.create({
          name,
          ...(subnet.v4 !== undefined ? { subnet: subnet.v4 } : {}),
          ...(gateway.v4 !== undefined ? { gateway: gateway.v4 } : {}),
          ...(o.ipv6 ? { ipv6: true } : {}),
          ...(subnet.v6 !== undefined ? { subnet6: subnet.v6 } : {}),
          ...(gateway.v6 !== undefined ? { gateway6: gateway.v6 } : {}),
          ...(o.ipRange !== undefined ? { ipRange: o.ipRange } : {}),
          internal: !!o.internal,
          dns: !o.disableDns,
          ...(o.mtu !== undefined ? { mtu: parseNumber(o.mtu, '--mtu', { integer: true, min: 576, max: 65535 }) } : {}),
          labels: parseLabels(o.label ?? []),
        });
        process.stdout.write(`${def.name}\n`);
      },
    );

  network
    .command('ls')
    .alias('list')
    .description('list networks')
    .option('--format <format>', 'table, json (one object per line) or a Go template')
    .option('-q, --quiet', 'names only')
    .option('--no-trunc', 'do not truncate network ids')
    .action(async (o: { format?: string; quiet?: boolean; trunc: boolean }) => {
      const format = parseFormat(o.format);
      const engine = await ctx.engine();
      const defs = engine.networks.store.list();
      if (o.quiet) {
        process.stdout.write(defs.map((d) => `${d.name}\n`).join(''));
        return;
      }
      if (format.kind !== 'default') {
        const rows = defs.map((d) =>
          networkContext(d, { trunc: o.trunc, attached: engine.networks.users(d.name).length }),
        );
        process.stdout.write(formatItems(format, rows, networkHeaders));
        return;
      }
      process.stdout.write(
        table(
          ['NETWORK ID', 'NAME', 'DRIVER', 'SUBNET', 'GATEWAY', 'FLAGS', 'ATTACHED', 'CREATED'],
          defs.map((d) => [
            d.id.slice(0, 12),
            d.name,
            d.driver,
            d.subnet,
            d.gateway,
            [d.internal ? 'internal' : '', d.dns ? 'dns' : ''].filter(Boolean).join(',') || '-',
            String(engine.networks.users(d.name).length),
            ago(d.createdAt),
          ]),
        ),
      );
    });

  network
    .command('inspect')
    .description('show networks in detail (JSON)')
    .argument('<name...>')
    .option('-f, --format <format>', 'a Go template run on each network (json: the JSON array, the default)')
    .action(async (names: string[], o: { format?: string }) => {
      const engine = await ctx.engine();
      const docs = names.map((n) => describeNetwork(engine, engine.networks.store.get(n)));
      process.stdout.write(inspectOutput(docs, o.format));
    });

  network
    .command('rm')
    .alias('remove')
    .description('remove networks (refused while instances use them)')
    .argument('<name...>')
    .option('-f, --force', 'remove the instances that use the network first')
    .action(async (names: string[], o: { force?: boolean }) => {
      const engine = await ctx.engine();
      let failed = false;
      for (const n of names) {
        try {
          const def = engine.networks.store.get(n);
          if (o.force) for (const r of networkUsers(engine, def.name)) await removeInstance(engine, r, { force: true });
          await removeNetwork(engine, def.name);
          process.stdout.write(`${def.name}\n`);
        } catch (e) {
          if (names.length === 1) throw e;
          process.stderr.write(`hull: ${(e as Error).message}\n`);
          failed = true;
        }
      }
      if (failed) ctx.exitCode = 1;
    });

  network
    .command('prune')
    .description(`remove every network no instance names (never the default network "${DEFAULT_NETWORK}")`)
    .option('-f, --force', 'do not ask (hull never asks)')
    .action(async () => {
      const errors: string[] = [];
      for (const name of await pruneNetworks(await ctx.engine(), errors)) process.stdout.write(`${name}\n`);
      for (const e of errors) process.stderr.write(`hull: ${e}\n`);
      if (errors.length) ctx.exitCode = 1;
    });

  network
    .command('connect')
    .description('connect an instance to a network (a running one joins at once)')
    .argument('<network>')
    .argument('<instance>')
    .option('--ip <address>', 'static IPv4 address')
    .option('--alias <name>', 'extra DNS name on this network (repeatable)', collect)
    .action(async (net: string, inst: string, o: { ip?: string; alias?: string[] }) => {
      const engine = await ctx.engine();
      const rec = await refresh(engine, engine.store.lookup(inst));
      if (!rec) throw new InvalidArgumentError(`instance ${inst} was removed`);
      const when = await connectInstance(engine, rec, net, {
        ...(o.ip ? { ip: o.ip } : {}),
        ...(o.alias ? { aliases: o.alias } : {}),
      });
      if (when === 'next-start' && (rec.state === 'running' || rec.state === 'paused')) {
        process.stderr.write(
          `hull: ${rec.name} is a ${rec.kind} whose network interfaces are fixed while it runs: it joins ${net} at its next start (hull restart ${rec.name})\n`,
        );
      }
    });

  network
    .command('disconnect')
    .description('disconnect an instance from a network')
    .argument('<network>')
    .argument('<instance>')
    .option('-f, --force', 'accepted for docker compatibility')
    .action(async (net: string, inst: string) => {
      const engine = await ctx.engine();
      const rec = await refresh(engine, engine.store.lookup(inst));
      if (!rec) throw new InvalidArgumentError(`instance ${inst} was removed`);
      const when = await disconnectInstance(engine, rec, net);
      if (when === 'next-start') {
        process.stderr.write(
          `hull: ${rec.name} is a ${rec.kind} whose network interfaces are fixed while it runs: it leaves ${net} at its next start (hull restart ${rec.name})\n`,
        );
      }
    });

  program
    .command('port')
    .description('list the published ports of an instance')
    .argument('<instance>')
    .argument('[port]', 'a container port, e.g. 80 or 80/tcp')
    .action(async (inst: string, which?: string) => {
      const engine = await ctx.engine();
      const rec = await refresh(engine, engine.store.lookup(inst));
      if (!rec) return;
      // a mapping on all addresses answers on IPv4 (0.0.0.0) and IPv6 ([::], through hull's proxy): two lines, as docker
      let ports = publishedPorts(engine, rec).flatMap((m) =>
        m.hostIp === '' && engine.networks.proxied(rec.id) ? [m, { ...m, hostIp: '::' }] : [m],
      );
      if (which !== undefined) {
        const [p, proto = 'tcp'] = which.split('/');
        ports = ports.filter((m) => String(m.containerPort) === p && m.protocol === proto);
        if (ports.length === 0) throw new InvalidArgumentError(`no public port ${which} published for ${rec.name}`);
        process.stdout.write(ports.map((m) => `${hostAddr(m.hostIp)}:${m.hostPort}\n`).join(''));
        return;
      }
      process.stdout.write(
        ports.map((m) => `${m.containerPort}/${m.protocol} -> ${hostAddr(m.hostIp)}:${m.hostPort}\n`).join(''),
      );
    });
}
