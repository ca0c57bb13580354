import type { Command } from 'commander';
import { Option } from 'commander';
import { basename, resolve } from 'node:path';
import type { CliContext } from '../context.js';
import { parseResources } from './create-flags.js';
import { terminalStdio } from '../stdio.js';
import { InvalidArgumentError, StateError } from '../../common/errors.js';
import { createInstance } from '../../engine/lifecycle/create.js';
import { startInstance } from '../../engine/lifecycle/start.js';
import { refresh } from '../../engine/lifecycle/exit.js';
import { VmDriver, checkDiskImage } from '../../vm/driver.js';

/**
 * VMs from disk images (`hull vm create --disk`), and the serial console of any VM (`hull console`).
 *
 * A disk image is entered into the image store as a layerless image whose labels name the disk (as Incus
 * imports VM disks as images): the instance then has an image like every other, so start, restart, inspect
 * and rm work unchanged. The disk itself is never written: each VM boots a qcow2 overlay over it.
 */
export function registerVmCommands(program: Command, ctx: CliContext): void {
  const vm = program.command('vm').description('virtual machines from full OS disk images');

  vm.command('create').description('create a VM that boots a disk image (qcow2 or raw) with its own OS')
    .requiredOption('--disk <image>', 'the disk image to boot (it is never modified: the VM writes to an overlay)')
    .addOption(new Option('--disk-format <format>', 'its format, checked against the file (default: what qemu-img finds)').choices(['qcow2', 'raw']))
    .option('--name <name>', 'name of the VM')
    .option('-m, --memory <bytes>', 'guest RAM (default 512m)')
    .option('--cpus <n>', 'vCPUs')
    .addOption(new Option('--accel <accel>', 'auto (default), kvm or tcg').choices(['auto', 'kvm', 'tcg']))
    .addOption(new Option('--device-model <model>', 'virtio (default) or emulated (IDE disk)').choices(['virtio', 'emulated']))
    .option('--start', 'start it right away')
    .action(async (o: { disk: string; diskFormat?: 'qcow2' | 'raw'; name?: string; memory?: string; cpus?: string; accel?: string; deviceModel?: 'virtio' | 'emulated'; start?: boolean }) => {
      const engine = await ctx.engine();
      const disk = resolve(o.disk);
      const format = await checkDiskImage(disk, o.diskFormat);
      const image = await engine.images.commitBuilt({
        architecture: 'amd64',
        os: 'linux',
        created: new Date().toISOString(),
        // what runs is the disk's own OS; the command is for display
        config: { Cmd: ['/sbin/init'], Labels: { 'org.hull.vm.disk': disk, 'org.hull.vm.disk-format': format } },
        rootfs: { type: 'layers', diff_ids: [] },
      }, [], []);
      let rec = await createInstance(engine, {
        kind: 'vm',
        image: basename(disk),
        ...(o.name !== undefined ? { name: o.name } : {}),
        resources: parseResources({ memory: o.memory, cpus: o.cpus }),
        vm: {
          disk, diskFormat: format,
          ...(o.accel !== undefined ? { accel: o.accel } : {}),
          ...(o.deviceModel !== undefined ? { deviceModel: o.deviceModel } : {}),
        },
      }, { image });
      if (o.start) rec = await startInstance(engine, rec);
      process.stdout.write(rec.id + '\n');
    });

  program.command('console').description("attach to a VM's serial console (Ctrl-] detaches)")
    .argument('<vm>')
    .action(async (name: string) => {
      const engine = await ctx.engine();
      const rec = await refresh(engine, engine.store.lookup(name));
      if (!rec || (rec.state !== 'running' && rec.state !== 'paused' && rec.state !== 'created')) throw new StateError(`cannot attach to the console of ${name}: it is not running`);
      const driver = engine.driver(rec.kind);
      if (!(driver instanceof VmDriver)) throw new InvalidArgumentError(`${name} is a ${rec.kind}, not a VM: use hull attach or hull exec`);
      const term = terminalStdio({ stdin: true, tty: !!process.stdin.isTTY });
      if (process.stdin.isTTY) process.stderr.write(`hull: connected to the console of ${name}; Ctrl-] detaches\r\n`);
      try {
        const how = await driver.console(engine.context(rec), term.stdio);
        if (how === 'stopped') await refresh(engine, rec);
      } finally {
        term.restore();
      }
    });
}
