import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { InvalidArgumentError } from '../../common/errors.js';
import { checkFormat, json } from '../format.js';
import { pruneBuildCache } from '../../engine/images.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** `hull build [-t NAME[:TAG]]... [-f FILE] [--build-arg K=V]... [--target STAGE] [--no-cache] [-q] CONTEXT` */
export function registerBuildCommand(program: Command, ctx: CliContext): void {
  program
    .command('build')
    .description('build an image from a Containerfile (or Dockerfile)')
    .argument('<context>', 'the build context directory')
    .option('-t, --tag <name>', 'name the image (repeatable)', collect, [])
    .option('-f, --file <path>', 'the Containerfile (default CONTEXT/Containerfile, else CONTEXT/Dockerfile)')
    .option('--build-arg <key=value>', 'set a build argument (repeatable)', collect, [])
    .option('--target <stage>', 'build up to this stage')
    .option('--no-cache', 'do not use the build cache')
    .option('-q, --quiet', 'print only the image id')
    .action(
      async (
        context: string,
        o: { tag: string[]; file?: string; buildArg: string[]; target?: string; cache: boolean; quiet?: boolean },
      ) => {
        const buildArgs: Record<string, string> = {};
        for (const a of o.buildArg) {
          const eq = a.indexOf('=');
          if (eq === 0) throw new InvalidArgumentError(`invalid --build-arg "${a}": expected KEY=VALUE`);
          if (eq < 0) {
            // docker: KEY alone takes the value from hull's environment, and is left out when unset
            const v = process.env[a];
            if (v !== undefined) buildArgs[a] = v;
          } else buildArgs[a.slice(0, eq)] = a.slice(eq + 1);
        }
        const engine = await ctx.engine();
        // loaded on use: the builder pulls in the tar code, which other commands do not need
        const { Builder } = await import('../../engine/build/builder.js');
        const quiet = o.quiet === true;
        const image = await new Builder(engine, {
          contextDir: context,
          ...(o.file !== undefined ? { file: o.file } : {}),
          tags: o.tag,
          buildArgs,
          ...(o.target !== undefined ? { target: o.target } : {}),
          noCache: !o.cache,
          log: (line) => {
            if (!quiet) process.stdout.write(line + '\n');
          },
          output: (text, stream) => {
            if (!quiet) (stream === 'stderr' ? process.stderr : process.stdout).write(text);
          },
        }).build();
        process.stdout.write(image.id.replace(/^sha256:/, '') + '\n');
      },
    );
}

/** `hull builder prune`: the build cache, like docker's. */
export function registerBuilderCommands(program: Command, ctx: CliContext): void {
  const builder = program.command('builder').description('manage the build cache');
  builder
    .command('prune')
    .description('remove build cache entries (all, or with --dangling-only those whose layers are gone)')
    .option('-a, --all', 'remove every entry (the default)')
    .option('--dangling-only', 'remove only entries whose layers are no longer stored')
    .option('-f, --force', 'do not ask for confirmation (accepted for docker compatibility)')
    .option('--format <format>', 'output format: table or json')
    .action(async (o: { danglingOnly?: boolean; format?: string }) => {
      const format = checkFormat(o.format);
      const r = await pruneBuildCache(await ctx.engine(), !o.danglingOnly);
      if (format === 'json')
        process.stdout.write(json({ CacheEntriesDeleted: r.entries, SpaceReclaimed: r.reclaimed }));
      else
        process.stdout.write(
          `Deleted build cache entries: ${r.entries}\nTotal reclaimed space: ${(r.reclaimed / 1048576).toFixed(2)}MiB\n`,
        );
    });
}
