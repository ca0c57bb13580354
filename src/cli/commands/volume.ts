/**
 * `hull volume …`: volumes in storage pools (engine/volumes.ts), docker's `volume` verbs, and hull's own:
 * `snapshot create|ls|restore|rm`, `export`, `import`, `clone` (engine/volume-ops.ts).
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { formatItems, inspectOutput, parseFormat, table } from '../format.js';
import { parseLabels, parseSize } from '../../common/parse.js';
import { InvalidArgumentError } from '../../common/errors.js';
import type { Engine } from '../../engine/engine.js';
import {
  createVolume,
  inspectVolume,
  listVolumes,
  pruneVolumes,
  removeVolume,
  snapshotNames,
  type VolumeRecord,
  volumeOptions,
  volumeUsed,
  volumeUsers,
} from '../../engine/volumes.js';
import {
  cloneVolume,
  createSnapshot,
  exportVolume,
  importVolume,
  listSnapshots,
  removeSnapshot,
  restoreSnapshot,
} from '../../engine/volume-ops.js';
import { humanSize } from './df.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** docker's volume options as hull keeps them (what differs from the defaults: pool, size in bytes, type). */
export function volumeOptionsOf(v: VolumeRecord): Record<string, string> {
  return {
    ...(v.pool && v.pool !== 'default' ? { pool: v.pool } : {}),
    ...(v.size !== undefined ? { size: String(v.size) } : {}),
    ...(v.type === 'block' ? { type: 'block' } : {}),
  };
}

/** A volume in docker's inspect vocabulary (Options: pool, type, size; Status: hull's usage figures). */
function describeVolume(engine: Engine, v: VolumeRecord, detail = true): Record<string, unknown> {
  return {
    CreatedAt: v.createdAt,
    Driver: v.driver,
    Labels: v.labels,
    Mountpoint: v.mountpoint,
    Name: v.name,
    Options: volumeOptionsOf(v),
    Scope: 'local',
    Pool: v.pool ?? 'default',
    Type: v.type ?? 'filesystem',
    Size: v.size ?? null,
    ...(detail
      ? {
          Status: {
            Used: volumeUsed(engine, v),
            Snapshots: snapshotNames(engine, v),
            UsedBy: volumeUsers(engine, v.name).map((r) => r.name),
          },
        }
      : {}),
  };
}

const headers = {
  Name: 'VOLUME NAME',
  Driver: 'DRIVER',
  Pool: 'POOL',
  Size: 'SIZE',
  Mountpoint: 'MOUNTPOINT',
  Scope: 'SCOPE',
};

export function registerVolumeCommands(program: Command, ctx: CliContext): void {
  const volume = program.command('volume').description('manage volumes (in storage pools: hull storage pool)');

  volume
    .command('create')
    .description('make a volume (a random name when none is given); an existing one is kept')
    .argument('[name]')
    .option('-d, --driver <driver>', 'volume driver (local only)', 'local')
    .option('--label <key=value>', 'label (repeatable)', collect)
    .option('--pool <pool>', 'the storage pool (default: default)')
    .option('--size <size>', 'a quota (btrfs, xfs pools), or the disk size of a block volume')
    .option('--type <type>', 'filesystem (default) or block (a raw disk file, for VMs)')
    .option('-o, --opt <key=value>', "docker's driver options: size, pool, type (repeatable)", collect)
    .action(
      async (
        name: string | undefined,
        o: { driver: string; label?: string[]; pool?: string; size?: string; type?: string; opt?: string[] },
      ) => {
        if (o.driver !== 'local')
          throw new InvalidArgumentError(
            `volume driver "${o.driver}" is not supported: hull has the local driver only`,
          );
        const opts = volumeOptions(
          Object.fromEntries([
            ...(o.opt ?? []).map((kv) => {
              const i = kv.indexOf('=');
              if (i <= 0) throw new InvalidArgumentError(`invalid --opt "${kv}": use KEY=VALUE`);
              return [kv.slice(0, i), kv.slice(i + 1)];
            }),
            ...(o.pool !== undefined ? [['pool', o.pool]] : []),
            ...(o.size !== undefined ? [['size', o.size]] : []),
            ...(o.type !== undefined ? [['type', o.type]] : []),
          ]),
        );
        const v = createVolume(await ctx.engine(), {
          ...(name ? { name } : {}),
          labels: parseLabels(o.label ?? []),
          ...opts,
        });
        process.stdout.write(`${v.name}\n`);
      },
    );

  volume
    .command('ls')
    .alias('list')
    .description('list volumes')
    .option('--format <format>', 'table, json (one object per line) or a Go template')
    .option('-q, --quiet', 'names only')
    .action(async (o: { format?: string; quiet?: boolean }) => {
      const format = parseFormat(o.format);
      const engine = await ctx.engine();
      const vols = listVolumes(engine);
      if (o.quiet) {
        process.stdout.write(vols.map((v) => `${v.name}\n`).join(''));
        return;
      }
      if (format.kind !== 'default') {
        process.stdout.write(
          formatItems(
            format,
            vols.map((v) => describeVolume(engine, v, false)),
            headers,
          ),
        );
        return;
      }
      process.stdout.write(
        table(
          ['DRIVER', 'VOLUME NAME', 'POOL', 'SIZE'],
          vols.map((v) => [v.driver, v.name, v.pool ?? 'default', v.size !== undefined ? humanSize(v.size) : '-']),
        ),
      );
    });

  volume
    .command('inspect')
    .description('show volumes in detail (JSON)')
    .argument('<name...>')
    .option('-f, --format <format>', 'a Go template run on each volume (json: the JSON array, the default)')
    .action(async (names: string[], o: { format?: string }) => {
      const engine = await ctx.engine();
      process.stdout.write(
        inspectOutput(
          names.map((n) => describeVolume(engine, inspectVolume(engine, n))),
          o.format,
        ),
      );
    });

  volume
    .command('rm')
    .alias('remove')
    .description('remove volumes and their data (refused while an instance uses them)')
    .argument('<name...>')
    .option('-f, --force', 'no error for a volume that does not exist')
    .action(async (names: string[], o: { force?: boolean }) => {
      const engine = await ctx.engine();
      let failed = false;
      for (const n of names) {
        try {
          removeVolume(engine, n, { force: !!o.force });
          process.stdout.write(`${n}\n`);
        } catch (e) {
          if (names.length === 1) throw e;
          process.stderr.write(`hull: ${(e as Error).message}\n`);
          failed = true;
        }
      }
      if (failed) ctx.exitCode = 1;
    });

  volume
    .command('prune')
    .description('remove every volume no instance uses')
    .option('-f, --force', 'do not ask (hull never asks)')
    .option('--filter <label=…>', 'only volumes with this label (label=KEY or label=KEY=VALUE; repeatable)', collect)
    .action(async (o: { filter?: string[] }) => {
      const labels = (o.filter ?? []).map((f) => f.replace(/^label=/, ''));
      const engine = await ctx.engine();
      for (const name of pruneVolumes(engine, labels)) process.stdout.write(`${name}\n`);
    });

  const snapshot = volume
    .command('snapshot')
    .description("a volume's snapshots (btrfs: O(1); xfs: reflinks; dir: copies)");
  snapshot
    .command('create')
    .description('take a snapshot of a volume')
    .argument('<volume>')
    .argument('<name>')
    .action(async (vol: string, name: string) => {
      const r = await createSnapshot(await ctx.engine(), vol, name);
      if (r.note) process.stderr.write(`hull: note: ${r.note}\n`);
      process.stdout.write(`${name}\n`);
    });
  snapshot
    .command('ls')
    .alias('list')
    .description("list a volume's snapshots")
    .argument('<volume>')
    .option('--format <format>', 'table, json (one object per line) or a Go template')
    .action(async (vol: string, o: { format?: string }) => {
      const snaps = listSnapshots(await ctx.engine(), vol);
      const format = parseFormat(o.format);
      const docs = snaps.map((s) => ({ Name: s.name, CreatedAt: s.createdAt }));
      if (format.kind !== 'default') {
        process.stdout.write(formatItems(format, docs, { Name: 'NAME', CreatedAt: 'CREATED' }));
        return;
      }
      process.stdout.write(
        table(
          ['NAME', 'CREATED'],
          snaps.map((s) => [s.name, s.createdAt]),
        ),
      );
    });
  snapshot
    .command('restore')
    .description("put a snapshot's content back into its volume (the volume must not be mounted by a running instance)")
    .argument('<volume>')
    .argument('<name>')
    .action(async (vol: string, name: string) => {
      await restoreSnapshot(await ctx.engine(), vol, name);
      process.stdout.write(`${name}\n`);
    });
  snapshot
    .command('rm')
    .alias('remove')
    .description('remove a snapshot')
    .argument('<volume>')
    .argument('<name...>')
    .action(async (vol: string, names: string[]) => {
      const engine = await ctx.engine();
      for (const n of names) {
        removeSnapshot(engine, vol, n);
        process.stdout.write(`${n}\n`);
      }
    });

  volume
    .command('export')
    .description("write a volume's files to a tar archive")
    .argument('<volume>')
    .requiredOption('-o, --output <file>', 'the archive to write')
    .action(async (vol: string, o: { output: string }) => {
      await exportVolume(await ctx.engine(), vol, o.output);
    });

  volume
    .command('import')
    .description('make a new volume from a tar archive (entries cannot reach outside the volume)')
    .argument('<file>')
    .argument('<name>')
    .option('--pool <pool>', 'the storage pool (default: default)')
    .option('--size <size>', 'a quota for the new volume (btrfs, xfs pools)')
    .option('--label <key=value>', 'label (repeatable)', collect)
    .action(async (file: string, name: string, o: { pool?: string; size?: string; label?: string[] }) => {
      const v = await importVolume(await ctx.engine(), file, name, {
        ...(o.pool !== undefined ? { pool: o.pool } : {}),
        ...(o.size !== undefined ? { size: parseSize(o.size, '--size') } : {}),
        ...(o.label ? { labels: parseLabels(o.label) } : {}),
      });
      process.stdout.write(`${v.name}\n`);
    });

  volume
    .command('clone')
    .description('make a new volume with a copy of another (a snapshot in btrfs and xfs pools)')
    .argument('<source>')
    .argument('<name>')
    .option('--pool <pool>', "the new volume's pool (default: the source's)")
    .action(async (src: string, name: string, o: { pool?: string }) => {
      const v = await cloneVolume(await ctx.engine(), src, name, o.pool);
      process.stdout.write(`${v.name}\n`);
    });
}
