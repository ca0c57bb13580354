import type { Command } from 'commander';
import { Option } from 'commander';
import type { CliContext } from '../context.js';
import { parseResources } from './create-flags.js';
import { terminalStdio } from '../stdio.js';
import { createFromDiskImage } from '../../engine/disk-image.js';
import { startInstance } from '../../engine/lifecycle/start.js';
import { consoleInstance } from '../../engine/lifecycle/console.js';
import { connectDisplay, liveDisplay } from '../../engine/display.js';
import { InvalidArgumentError } from '../../common/errors.js';
import { parseSize } from '../../common/parse.js';
import { createServer, type AddressInfo } from 'node:net';

/**
 * VMs from disk images (`hull vm create --disk`, engine/disk-image.ts), and the serial console of any
 * instance that has one (`hull console`, engine/lifecycle/console.ts).
 */
export function registerVmCommands(program: Command, ctx: CliContext): void {
  const vm = program.command('vm').description('virtual machines from full OS disk images');

  vm.command('create')
    .description('create a VM that boots a disk image (qcow2 or raw) with its own OS')
    .requiredOption(
      '--disk <image>',
      'the disk image to boot: copied into the storage pool (a reflink where the pool can), so your file is never modified',
    )
    .option('--pool <pool>', "the storage pool that holds the VM's copy of the disk (default: default)")
    .option('--disk-size <size>', "grow the VM's disk to this size (e.g. 20g; cloud-init grows the guest's filesystem)")
    .option('--disk-in-place', 'boot your file itself, without a copy: the guest writes to it, and rm leaves it')
    .addOption(
      new Option(
        '--disk-format <format>',
        'its format, checked against the file (default: what qemu-img finds)',
      ).choices(['qcow2', 'raw']),
    )
    .option('--name <name>', 'name of the VM')
    .option('-m, --memory <bytes>', 'guest RAM (default 512m)')
    .option('--cpus <n>', 'vCPUs')
    .addOption(new Option('--accel <accel>', 'auto (default), kvm or tcg').choices(['auto', 'kvm', 'tcg']))
    .addOption(
      new Option('--device-model <model>', 'virtio (default) or emulated (IDE disk)').choices(['virtio', 'emulated']),
    )
    .addOption(
      new Option(
        '--display <type>',
        'vnc (default: a graphics card, its screen served over VNC; see hull vnc) or none',
      ).choices(['vnc', 'none']),
    )
    .addOption(
      new Option(
        '--firmware <firmware>',
        'bios (SeaBIOS, default) or uefi (OVMF; the disk needs an EFI system partition)',
      ).choices(['bios', 'uefi']),
    )
    .option('--cloud-init <file>', 'cloud-init user-data (#cloud-config or a script); default: the hostname only')
    .option('--ssh-key <file>', "OpenSSH public keys (a .pub file) for the image's default user, through cloud-init")
    .option(
      '--network-config <file>',
      "cloud-init network-config (version 1 or 2); default: each NIC with the address hull's network gave it",
    )
    .option('-h, --hostname <name>', "the guest's hostname (default: the VM's name)")
    .option(
      '--network <name>',
      'a hull network (default: hull) or none; repeatable',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('--ip <address>', 'static IPv4 address on the (first) network')
    .option(
      '-p, --publish <[ip:][host:]port[/proto]>',
      'publish a guest port on the host (repeatable)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('--start', 'start it right away')
    .helpOption('--help', 'show help')
    .action(
      async (o: {
        disk: string;
        firmware?: 'bios' | 'uefi';
        cloudInit?: string;
        sshKey?: string;
        networkConfig?: string;
        hostname?: string;
        network?: string[];
        ip?: string;
        publish?: string[];
        diskFormat?: 'qcow2' | 'raw';
        pool?: string;
        diskSize?: string;
        diskInPlace?: boolean;
        name?: string;
        memory?: string;
        cpus?: string;
        accel?: string;
        deviceModel?: 'virtio' | 'emulated';
        display?: 'vnc' | 'none';
        start?: boolean;
      }) => {
        const engine = await ctx.engine();
        let rec = await createFromDiskImage(
          engine,
          {
            kind: 'vm',
            ...(o.name !== undefined ? { name: o.name } : {}),
            ...(o.hostname !== undefined ? { hostname: o.hostname } : {}),
            ...(o.network ? { networks: o.network } : {}),
            ...(o.ip !== undefined ? { ip: o.ip } : {}),
            ...(o.publish ? { publish: o.publish } : {}),
            resources: parseResources({ memory: o.memory, cpus: o.cpus }),
            ...(o.display ? { display: o.display } : {}),
            vm: {
              ...(o.accel !== undefined ? { accel: o.accel } : {}),
              ...(o.deviceModel !== undefined ? { deviceModel: o.deviceModel } : {}),
              ...(o.firmware !== undefined ? { firmware: o.firmware } : {}),
              ...(o.pool !== undefined ? { pool: o.pool } : {}),
              ...(o.diskSize !== undefined ? { diskSize: parseSize(o.diskSize, '--disk-size') } : {}),
              ...(o.diskInPlace ? { diskInPlace: true } : {}),
            },
            cloudInitFiles: {
              ...(o.cloudInit !== undefined ? { userData: o.cloudInit } : {}),
              ...(o.networkConfig !== undefined ? { networkConfig: o.networkConfig } : {}),
              ...(o.sshKey !== undefined ? { sshKey: o.sshKey } : {}),
            },
          },
          { path: o.disk, ...(o.diskFormat ? { format: o.diskFormat } : {}) },
        );
        if (o.start) rec = await startInstance(engine, rec);
        process.stdout.write(rec.id + '\n');
      },
    );

  program
    .command('vnc')
    .description(
      "where a desktop VNC client reaches an instance's display (--display): its unix socket, or with --listen a loopback TCP port forwarded to it while this runs",
    )
    .argument('<instance>')
    .option('--listen <host:port>', 'forward this TCP address to the display until interrupted (port 0: any free port)')
    .action(async (ref: string, o: { listen?: string }) => {
      const engine = await ctx.engine();
      const { rec, display } = await liveDisplay(engine, engine.store.lookup(ref));
      if (!o.listen) {
        process.stdout.write(`unix:${display.socket}\n`);
        return;
      }
      const m = /^(.*):(\d+)$/.exec(o.listen);
      if (!m) throw new InvalidArgumentError(`invalid --listen "${o.listen}": expected HOST:PORT, e.g. 127.0.0.1:5901`);
      const host = m[1]!.replace(/^\[(.*)\]$/, '$1');
      const open = new Set<{ destroy(): void }>();
      const server = createServer((client) => {
        open.add(client);
        client.once('close', () => open.delete(client));
        connectDisplay(engine, rec).then(
          (vnc) => {
            client.pipe(vnc).pipe(client);
            const end = () => {
              client.destroy();
              vnc.destroy();
            };
            client.on('error', end).on('close', end);
            vnc.on('error', end).on('close', end);
          },
          (e: Error) => {
            process.stderr.write(`hull vnc: ${e.message}\n`);
            client.destroy();
          },
        );
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', (e) =>
          reject(
            new InvalidArgumentError(`cannot listen on ${o.listen}: ${(e as NodeJS.ErrnoException).code ?? e.message}`),
          ),
        );
        server.listen(Number(m[2]), host, () => resolve());
      });
      const a = server.address() as AddressInfo;
      const shown = a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
      process.stdout.write(`${shown}\n`);
      process.stderr.write(`hull: forwarding ${shown} to the display of ${rec.name}; Ctrl-C stops\n`);
      // until interrupted, or until the instance's run ends (its display goes with it)
      const ended = new AbortController();
      await new Promise<void>((resolve) => {
        const stop = () => {
          ended.abort();
          server.close(() => resolve());
          for (const c of open) c.destroy();
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        engine
          .driver(rec.kind)
          .waitExit(engine.context(rec), ended.signal)
          .then(
            () => {
              if (ended.signal.aborted) return;
              process.stderr.write(`hull: ${rec.name} stopped; its display is gone\n`);
              stop();
            },
            () => undefined,
          );
      });
    });

  program
    .command('console')
    .description("attach to a VM's serial console (Ctrl-] detaches)")
    .argument('<vm>')
    .action(async (name: string) => {
      const engine = await ctx.engine();
      await consoleInstance(engine, name, () => {
        const term = terminalStdio({ stdin: true, tty: !!process.stdin.isTTY });
        if (process.stdin.isTTY) process.stderr.write(`hull: connected to the console of ${name}; Ctrl-] detaches\r\n`);
        return term;
      });
    });
}
