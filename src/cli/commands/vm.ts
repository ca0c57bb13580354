import type { Command } from 'commander';
import { Option } from 'commander';
import type { CliContext } from '../context.js';
import { parseResources } from './create-flags.js';
import { terminalStdio } from '../stdio.js';
import { createFromDiskImage } from '../../engine/disk-image.js';
import { startInstance } from '../../engine/lifecycle/start.js';
import { consoleInstance } from '../../engine/lifecycle/console.js';

/**
 * VMs from disk images (`hull vm create --disk`, engine/disk-image.ts), and the serial console of any
 * instance that has one (`hull console`, engine/lifecycle/console.ts).
 */
export function registerVmCommands(program: Command, ctx: CliContext): void {
  const vm = program.command('vm').description('virtual machines from full OS disk images');

  vm.command('create')
    .description('create a VM that boots a disk image (qcow2 or raw) with its own OS')
    .requiredOption('--disk <image>', 'the disk image to boot (it is never modified: the VM writes to an overlay)')
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
    .option('--start', 'start it right away')
    .action(
      async (o: {
        disk: string;
        diskFormat?: 'qcow2' | 'raw';
        name?: string;
        memory?: string;
        cpus?: string;
        accel?: string;
        deviceModel?: 'virtio' | 'emulated';
        start?: boolean;
      }) => {
        const engine = await ctx.engine();
        let rec = await createFromDiskImage(
          engine,
          {
            kind: 'vm',
            ...(o.name !== undefined ? { name: o.name } : {}),
            resources: parseResources({ memory: o.memory, cpus: o.cpus }),
            vm: {
              ...(o.accel !== undefined ? { accel: o.accel } : {}),
              ...(o.deviceModel !== undefined ? { deviceModel: o.deviceModel } : {}),
            },
          },
          { path: o.disk, ...(o.diskFormat ? { format: o.diskFormat } : {}) },
        );
        if (o.start) rec = await startInstance(engine, rec);
        process.stdout.write(rec.id + '\n');
      },
    );

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
