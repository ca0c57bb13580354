import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { StateError } from '../../common/errors.js';
import { containerChanges } from '../../engine/cp.js';
import { commitInstance } from '../../engine/commit.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

/**
 * `hull commit INSTANCE [IMAGE]` (docker commit, engine/commit.ts) and `hull diff INSTANCE` (and `hull container diff`): docker diff, the paths a container changed in its root, read
 * from its overlay's writable layer (stopped containers too): `A` added, `C` changed, `D` deleted.
 */
export function registerDiffCommand(program: Command, ctx: CliContext): void {
  program
    .command('diff')
    .description('list the files a container changed in its root: A added, C changed, D deleted')
    .argument('<instance>')
    .action(async (ref: string) => {
      const engine = await ctx.engine();
      const rec = engine.store.lookup(ref);
      if (rec.kind === 'vm')
        throw new StateError(`hull diff of VM ${rec.name} is not supported: its root is a disk image, not a layer`);
      const changes = await containerChanges(engine, rec);
      process.stdout.write(changes.map((c) => `${'CAD'[c.Kind]} ${c.Path}\n`).join(''));
    });

  program
    .command('commit')
    .description("make an image of a container's changes (a new layer over its image; the container's config)")
    .argument('<instance>')
    .argument('[image]', 'the new image name (none: an untagged image)')
    .option(
      '-c, --change <instruction>',
      'a Containerfile instruction: CMD, ENTRYPOINT, ENV, LABEL, WORKDIR, USER, EXPOSE, VOLUME, STOPSIGNAL (repeatable)',
      collect,
    )
    .option('-m, --message <text>', "the commit message (the layer's history comment)")
    .option('-a, --author <name>', 'the author')
    .option('-p, --pause', "docker's flag; hull does not pause the container", true)
    .action(
      async (ref: string, image: string | undefined, o: { change?: string[]; message?: string; author?: string }) => {
        const engine = await ctx.engine();
        const rec = engine.store.lookup(ref);
        if (rec.kind === 'vm')
          throw new StateError(`hull commit of VM ${rec.name} is not supported: its root is a disk image, not a layer`);
        const img = await commitInstance(engine, rec, {
          ...(image ? { ref: image } : {}),
          ...(o.change ? { changes: o.change } : {}),
          ...(o.message ? { message: o.message } : {}),
          ...(o.author ? { author: o.author } : {}),
        });
        process.stdout.write(`${img.id}\n`);
      },
    );
}
