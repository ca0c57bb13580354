import { createWriteStream, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../common/errors.js';
import { copyFiles } from '../../engine/copy-files.js';
import { exportContainer } from '../../engine/cp.js';
import type { CliContext } from '../context.js';

/**
 * `hull cp [-a] [-L] SRC DST` (docker cp, engine/copy-files.ts) and `hull export [-o FILE] CONTAINER` (docker
 * export: a container's file system as a tar, engine/cp.ts).
 */
export function registerCpCommands(program: Command, ctx: CliContext): void {
  program
    .command('cp')
    .description(
      'copy files and directories between the host and an instance (a container, running or stopped, or a running VM): hull cp c1:/etc/hostname .; - is a tar stream on stdin or stdout',
    )
    .argument('<src>', 'a host path, INSTANCE:PATH, or - (a tar read from stdin)')
    .argument('<dst>', 'a host path, INSTANCE:PATH, or - (a tar written to stdout)')
    .option('-a, --archive', "keep the files' owners (uid and gid); without it they belong to the destination's root")
    .option('-L, --follow-link', 'follow SRC when it is a symbolic link')
    .action(async (src: string, dst: string, o: { archive?: boolean; followLink?: boolean }) => {
      if (dst === '-' && process.stdout.isTTY)
        throw new InvalidArgumentError('hull cp … -: refusing to write a tar to a terminal (redirect stdout)');
      await copyFiles(await ctx.engine(), src, dst, {
        ...(o.archive ? { archive: true } : {}),
        ...(o.followLink ? { followLink: true } : {}),
      });
    });

  program
    .command('export')
    .description("write a container's file system (running or stopped) as a tar archive to stdout or a file")
    .argument('<container>')
    .option('-o, --output <file>', 'write to this file instead of stdout')
    .action(async (ref: string, o: { output?: string }) => {
      const engine = await ctx.engine();
      const rec = engine.store.lookup(ref);
      if (!o.output) {
        if (process.stdout.isTTY)
          throw new InvalidArgumentError(
            'hull export: refusing to write a tar to a terminal: use -o FILE or redirect stdout',
          );
        await exportContainer(engine, rec, process.stdout);
        return;
      }
      // a temporary file beside the target, renamed when complete: no half-written archive on failure
      const target = resolve(o.output);
      const tmp = join(dirname(target), `.${basename(target)}.hull-${process.pid}`);
      try {
        await exportContainer(engine, rec, createWriteStream(tmp, { mode: 0o644 }));
        renameSync(tmp, target);
      } finally {
        rmSync(tmp, { force: true });
      }
    });
}
