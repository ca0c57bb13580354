/** `hull volume …`: directory-backed volumes (engine/volumes.ts), docker's `volume` verbs. */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { formatItems, inspectOutput, parseFormat, table } from '../format.js';
import { parseLabels } from '../../common/parse.js';
import { InvalidArgumentError } from '../../common/errors.js';
import {
  createVolume,
  inspectVolume,
  listVolumes,
  pruneVolumes,
  removeVolume,
  type VolumeRecord,
} from '../../engine/volumes.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** A volume in docker's inspect vocabulary. */
function describeVolume(v: VolumeRecord): Record<string, unknown> {
  return {
    CreatedAt: v.createdAt,
    Driver: v.driver,
    Labels: v.labels,
    Mountpoint: v.mountpoint,
    Name: v.name,
    Options: {},
    Scope: 'local',
  };
}

const headers = { Name: 'VOLUME NAME', Driver: 'DRIVER', Mountpoint: 'MOUNTPOINT', Scope: 'SCOPE' };

export function registerVolumeCommands(program: Command, ctx: CliContext): void {
  const volume = program.command('volume').description("manage volumes (directories under hull's root)");

  volume
    .command('create')
    .description('make a volume (a random name when none is given); an existing one is kept')
    .argument('[name]')
    .option('-d, --driver <driver>', 'volume driver (local only)', 'local')
    .option('--label <key=value>', 'label (repeatable)', collect)
    .action(async (name: string | undefined, o: { driver: string; label?: string[] }) => {
      if (o.driver !== 'local')
        throw new InvalidArgumentError(`volume driver "${o.driver}" is not supported: hull has the local driver only`);
      const v = createVolume(await ctx.engine(), { ...(name ? { name } : {}), labels: parseLabels(o.label ?? []) });
      process.stdout.write(`${v.name}\n`);
    });

  volume
    .command('ls')
    .alias('list')
    .description('list volumes')
    .option('--format <format>', 'table, json (one object per line) or a Go template')
    .option('-q, --quiet', 'names only')
    .action(async (o: { format?: string; quiet?: boolean }) => {
      const format = parseFormat(o.format);
      const vols = listVolumes(await ctx.engine());
      if (o.quiet) {
        process.stdout.write(vols.map((v) => `${v.name}\n`).join(''));
        return;
      }
      if (format.kind !== 'default') {
        process.stdout.write(formatItems(format, vols.map(describeVolume), headers));
        return;
      }
      process.stdout.write(
        table(
          ['DRIVER', 'VOLUME NAME'],
          vols.map((v) => [v.driver, v.name]),
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
          names.map((n) => describeVolume(inspectVolume(engine, n))),
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
}
