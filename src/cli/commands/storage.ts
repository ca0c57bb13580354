/** `hull storage pool …`: storage pools (storage/pools.ts), where volumes live. */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { formatItems, inspectOutput, parseFormat, table } from '../format.js';
import { parseSize } from '../../common/parse.js';
import type { Engine } from '../../engine/engine.js';
import {
  createStoragePool,
  getPool,
  listPools,
  type PoolRecord,
  poolSpace,
  poolVolumes,
  removeStoragePool,
} from '../../engine/volumes.js';
import { humanSize } from './df.js';
import { poolVmDisks } from '../../engine/vm-disks.js';

/** A pool as `inspect` shows it. */
export function describePool(engine: Engine, p: PoolRecord): Record<string, unknown> {
  const space = poolSpace(p);
  return {
    Name: p.name,
    Driver: p.driver,
    Path: p.path,
    ...(p.source ? { Source: p.source } : {}),
    ...(p.image ? { Image: p.image } : {}),
    ...(p.device ? { Device: p.device } : {}),
    Quotas: p.driver === 'btrfs' || (p.driver === 'xfs' && p.quotas === true),
    Size: space.size,
    Used: space.used,
    Free: space.free,
    Volumes: poolVolumes(engine, p.name).map((v) => v.name),
    // VMs' root disks in the pool (engine/vm-disks.ts): the instance, the file, the bytes it takes
    VmDisks: poolVmDisks(engine, p.name).map((d) => ({ Instance: d.instance, Id: d.id, Path: d.path, Used: d.bytes })),
    CreatedAt: p.createdAt || null,
  };
}

const headers = { Name: 'NAME', Driver: 'DRIVER', Size: 'SIZE', Used: 'USED', Free: 'FREE', Path: 'PATH' };

export function registerStorageCommands(program: Command, ctx: CliContext): void {
  const storage = program.command('storage').description('manage storage pools (where volumes live)');
  const pool = storage.command('pool').description('manage storage pools: dir, btrfs and xfs');

  pool
    .command('create')
    .description('make a pool: loop-backed under the root unless --source names a device, image file or directory')
    .argument('<name>')
    .requiredOption('--driver <driver>', 'dir, btrfs or xfs')
    .option('--source <path>', 'a block device or image file to format, or a directory to use as it is')
    .option('--size <size>', 'the size of the pool image (btrfs, xfs; default 1g)')
    .action(async (name: string, o: { driver: string; source?: string; size?: string }) => {
      const engine = await ctx.engine();
      const p = await createStoragePool(engine, {
        name,
        driver: o.driver,
        ...(o.source !== undefined ? { source: o.source } : {}),
        ...(o.size !== undefined ? { size: parseSize(o.size, '--size') } : {}),
      });
      process.stdout.write(`${p.name}\n`);
    });

  pool
    .command('ls')
    .alias('list')
    .description('list pools')
    .option('--format <format>', 'table, json (one object per line) or a Go template')
    .option('-q, --quiet', 'names only')
    .action(async (o: { format?: string; quiet?: boolean }) => {
      const engine = await ctx.engine();
      const pools = listPools(engine.root);
      if (o.quiet) {
        process.stdout.write(pools.map((p) => `${p.name}\n`).join(''));
        return;
      }
      const docs = pools.map((p) => describePool(engine, p));
      const format = parseFormat(o.format);
      if (format.kind !== 'default') {
        process.stdout.write(formatItems(format, docs, headers));
        return;
      }
      process.stdout.write(
        table(
          ['NAME', 'DRIVER', 'SIZE', 'USED', 'FREE', 'VOLUMES', 'PATH'],
          docs.map((d) => [
            String(d.Name),
            String(d.Driver),
            humanSize(d.Size as number),
            humanSize(d.Used as number),
            humanSize(d.Free as number),
            String((d.Volumes as string[]).length),
            String(d.Path),
          ]),
        ),
      );
    });

  pool
    .command('inspect')
    .description('show pools in detail (JSON): size, used, free, volumes')
    .argument('<name...>')
    .option('-f, --format <format>', 'a Go template run on each pool (json: the JSON array, the default)')
    .action(async (names: string[], o: { format?: string }) => {
      const engine = await ctx.engine();
      process.stdout.write(
        inspectOutput(
          names.map((n) => describePool(engine, getPool(engine.root, n))),
          o.format,
        ),
      );
    });

  pool
    .command('rm')
    .alias('remove')
    .description('unmount and remove pools (refused while they hold volumes or VM disks)')
    .argument('<name...>')
    .action(async (names: string[]) => {
      const engine = await ctx.engine();
      for (const n of names) {
        await removeStoragePool(engine, n);
        process.stdout.write(`${n}\n`);
      }
    });
}
