import type { Command } from 'commander';
import { createRequire } from 'node:module';
import type { CliContext } from '../context.js';
import { ago, bytes, checkFormat, formatItems, inspectOutput, json, parseFormat, table } from '../format.js';
import { imageContexts, imageHeaders } from '../contexts.js';
import { InvalidArgumentError } from '../../common/errors.js';
import { parseEnv } from '../../common/parse.js';
import { checkImageRemovable, imageHistory, pruneImages, removeImage } from '../../engine/images.js';
import { imageDocument } from '../../engine/describe.js';

/** Ask a yes/no question on the terminal; true only for y or yes. */
async function confirm(question: string): Promise<boolean> {
  const { createInterface } = createRequire(import.meta.url)(
    'node:readline/promises',
  ) as typeof import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function registerImageCommands(program: Command, ctx: CliContext): void {
  program
    .command('import')
    .description('create an image from a root filesystem tarball (plain, gzip or zstd; - for stdin)')
    .option('-m, --message <text>', 'commit message in the image history')
    .option('-c, --change <instruction>', 'CMD, ENTRYPOINT, ENV or WORKDIR to set (repeatable)', collect)
    .argument('<file>')
    .argument('<name[:tag]>')
    .action(async (file: string, ref: string, o: { message?: string; change?: string[] }) => {
      const engine = await ctx.engine();
      const changes = parseChanges(o.change ?? []);
      const img = await engine.images.importTar(file, ref, { ...(o.message ? { message: o.message } : {}), changes });
      process.stdout.write(`${img.id}\n`);
    });

  program
    .command('images')
    .description('list images')
    .option('-q, --quiet', 'only ids')
    .option('--no-trunc', 'do not truncate image ids')
    .option('--format <format>', 'table, json (one object per line) or a Go template')
    .action(async (o: { quiet?: boolean; trunc: boolean; format?: string }) => {
      const format = parseFormat(o.format);
      const engine = await ctx.engine();
      const imgs = await engine.images.list();
      if (o.quiet) {
        process.stdout.write(imgs.map((i) => i.id.slice(7, 19) + '\n').join(''));
        return;
      }
      if (format.kind !== 'default') {
        const users = engine.store.list();
        const rows = imgs.flatMap((i) =>
          imageContexts(i, { trunc: o.trunc, containers: users.filter((r) => r.imageId === i.id).length }),
        );
        process.stdout.write(formatItems(format, rows, imageHeaders));
        return;
      }
      const rows = imgs.flatMap((i) =>
        (i.names.length ? i.names : ['<none>:<none>']).map((n) => {
          const at = n.indexOf('@');
          const c = at >= 0 ? at : n.lastIndexOf(':');
          return [
            n.slice(0, c),
            at >= 0 ? '<none>' : n.slice(c + 1),
            i.id.slice(7, 19),
            ago(Date.parse(i.created)),
            bytes(i.size),
          ];
        }),
      );
      process.stdout.write(table(['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'], rows));
    });

  const rmi = async (refs: string[], o: { force?: boolean }): Promise<void> => {
    const engine = await ctx.engine();
    for (const ref of refs) {
      await checkImageRemovable(engine, ref, !!o.force);
      for (const line of await removeImage(engine, ref, !!o.force)) process.stdout.write(line + '\n');
    }
  };
  program
    .command('rmi')
    .description('remove images')
    .option('-f, --force', 'remove even if instances use it (it stays, without a name, while they do)')
    .argument('<image...>')
    .action(rmi);

  program
    .command('tag')
    .description('give an image another name')
    .argument('<source>')
    .argument('<target>')
    .action(async (src: string, dst: string) => {
      await (await ctx.engine()).images.tag(src, dst);
    });

  const image = program.command('image').description('manage images');
  image
    .command('inspect')
    .description("show an image's manifest and config (JSON)")
    .option('-f, --format <format>', 'a Go template run on each image (json: the JSON array)')
    .argument('<image...>')
    .action(async (refs: string[], o: { format?: string }) => {
      const engine = await ctx.engine();
      const out = [];
      for (const r of refs) out.push(imageDocument(await engine.images.resolve(r)));
      process.stdout.write(inspectOutput(out, o.format));
    });
  image
    .command('prune')
    .description('remove unused images and free their blobs and extracted layers')
    .option('-a, --all', 'remove every image no instance uses, not only dangling ones')
    .option('-f, --force', 'do not ask for confirmation')
    .option('--format <format>', 'output format: table or json')
    .action(async (o: { all?: boolean; force?: boolean; format?: string }) => {
      const format = checkFormat(o.format);
      if (!o.force && process.stdin.isTTY && format !== 'json') {
        const what = o.all ? 'all images without at least one instance associated to them' : 'all dangling images';
        if (!(await confirm(`WARNING! This will remove ${what}.\nAre you sure you want to continue? [y/N] `))) return;
      }
      const engine = await ctx.engine();
      const r = await pruneImages(engine, !!o.all);
      if (format === 'json') {
        process.stdout.write(
          json({
            ImagesDeleted: r.images,
            BlobsDeleted: r.gc.blobs,
            LayersDeleted: r.gc.layers,
            SpaceReclaimed: r.gc.reclaimed,
            CacheEntriesDeleted: r.cacheEntries,
          }),
        );
        return;
      }
      for (const id of r.images) process.stdout.write(`Deleted: ${id}\n`);
      process.stdout.write(`Total reclaimed space: ${bytes(r.gc.reclaimed)}\n`);
    });

  program
    .command('history')
    .description('show the steps that made an image, newest first')
    .option('--no-trunc', 'do not truncate the steps')
    .option('--format <format>', 'table or json')
    .argument('<image>')
    .action(async (ref: string, o: { trunc: boolean; format?: string }) => {
      const format = checkFormat(o.format);
      const img = await (await ctx.engine()).images.resolve(ref);
      // each non-empty step paired with its layer, as docker does
      const steps = imageHistory(img);
      if (format === 'json') {
        process.stdout.write(json(steps));
        return;
      }
      process.stdout.write(
        table(
          ['CREATED', 'CREATED BY', 'SIZE', 'COMMENT'],
          steps.map((s) => [
            s.created ? ago(Date.parse(s.created)) : '<missing>',
            o.trunc && s.createdBy.length > 60 ? s.createdBy.slice(0, 57) + '...' : s.createdBy,
            bytes(s.size),
            s.comment,
          ]),
        ),
      );
    });
}

/** -c/--change for import: CMD/ENTRYPOINT (JSON array or shell form), ENV k=v, WORKDIR path. */
function parseChanges(items: string[]): { cmd?: string[]; env?: string[]; entrypoint?: string[]; workdir?: string } {
  const out: { cmd?: string[]; env?: string[]; entrypoint?: string[]; workdir?: string } = {};
  for (const item of items) {
    const m = /^\s*(\w+)\s+(.*)$/s.exec(item);
    if (!m) throw new InvalidArgumentError(`invalid --change "${item}": expected INSTRUCTION ARGS`);
    const [, instr, arg] = m as unknown as [string, string, string];
    const argv = () => {
      if (arg.trim().startsWith('[')) {
        try {
          return JSON.parse(arg) as string[];
        } catch {
          /* shell form below */
        }
      }
      return ['/bin/sh', '-c', arg];
    };
    switch (instr.toUpperCase()) {
      case 'CMD':
        out.cmd = argv();
        break;
      case 'ENTRYPOINT':
        out.entrypoint = argv();
        break;
      case 'ENV':
        out.env = [...(out.env ?? []), ...parseEnv([arg.includes('=') ? arg : arg.replace(/\s+/, '=')])];
        break;
      case 'WORKDIR':
        out.workdir = arg.trim();
        break;
      default:
        throw new InvalidArgumentError(
          `unsupported --change instruction ${instr}: use CMD, ENTRYPOINT, ENV or WORKDIR`,
        );
    }
  }
  return out;
}
