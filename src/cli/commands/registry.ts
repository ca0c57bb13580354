import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { TransferProgress } from '../progress.js';
import { InvalidArgumentError, NotFoundError } from '../../common/errors.js';
import { pullWithProgress, tlsVerify, transferOptions } from '../transfer.js';
import { loadImages, login, logout, push, saveImages } from '../../engine/transfer.js';
import { hullEnvNumber } from '../../common/env.js';

/** A registry host as typed by a user (`https://quay.io/`, `index.docker.io`) → the host key. */
function registryHost(text: string): string {
  let host = text.replace(/^[a-z]+:\/\//, '').replace(/\/.*$/, '');
  if (host === 'index.docker.io' || host === 'registry-1.docker.io') host = 'docker.io';
  if (!/^[A-Za-z0-9.-]+(?::\d+)?$|^\[[0-9a-fA-F:]+\](?::\d+)?$/.test(host))
    throw new InvalidArgumentError(
      `invalid registry "${text}": give a host name with an optional port, e.g. quay.io or 127.0.0.1:5000`,
    );
  return host;
}

async function readStdin(): Promise<string> {
  let s = '';
  for await (const chunk of process.stdin) s += chunk;
  return s;
}

export function registerRegistryCommands(program: Command, ctx: CliContext): void {
  const STALL_HELP =
    'give up on a transfer attempt (and retry it) when no byte moves for this long: seconds, or 500ms/30s/2m; 0: never (default 30s, or HULL_REGISTRY_STALL_TIMEOUT)';

  program
    .command('pull')
    .description('download an image from a registry')
    .option('--platform <os/arch[/variant]>', "platform to pick from a multi-platform image (default: the host's)")
    .option('--tls-verify [bool]', 'use HTTPS (false: plain HTTP, for registries without TLS)')
    .option('-q, --quiet', 'print only the image id')
    .option('--stall-timeout <duration>', STALL_HELP)
    .argument('<image>')
    .action(
      async (
        ref: string,
        o: { platform?: string; tlsVerify?: string | boolean; quiet?: boolean; stallTimeout?: string },
      ) => {
        const img = await pullWithProgress(await ctx.engine(), ref, o);
        process.stdout.write(`${img.id}\n`);
      },
    );

  program
    .command('push')
    .description('upload an image to a registry')
    .option('--tls-verify [bool]', 'use HTTPS (false: plain HTTP, for registries without TLS)')
    .option('-q, --quiet', 'print nothing but errors')
    .option('--stall-timeout <duration>', STALL_HELP)
    .argument('<image>', 'local image')
    .argument('[destination]', 'REGISTRY/REPOSITORY[:TAG] (default: the image name)')
    .action(
      async (
        src: string,
        dest: string | undefined,
        o: { tlsVerify?: string | boolean; quiet?: boolean; stallTimeout?: string },
      ) => {
        const engine = await ctx.engine();
        const progress = new TransferProgress('push', !!o.quiet);
        let r;
        try {
          r = await push(engine, src, dest, {
            ...(hullEnvNumber('HULL_PUSH_CHUNK_SIZE') ? { chunkSize: hullEnvNumber('HULL_PUSH_CHUNK_SIZE')! } : {}),
            ...transferOptions(o, progress),
          });
        } finally {
          progress.finish();
        }
        if (!o.quiet) process.stderr.write(`Pushed ${r.ref}: ${r.digest}\n`);
      },
    );

  program
    .command('login')
    .description('save credentials for a registry (checked against it first)')
    .option('-u, --username <user>', 'user name')
    .option('-p, --password <password>', 'password (prefer --password-stdin)')
    .option('--password-stdin', 'read the password from stdin')
    .option('--tls-verify [bool]', 'use HTTPS (false: plain HTTP, for registries without TLS)')
    .argument('<registry>')
    .action(
      async (
        reg: string,
        o: { username?: string; password?: string; passwordStdin?: boolean; tlsVerify?: string | boolean },
      ) => {
        const host = registryHost(reg);
        if (o.password !== undefined && o.passwordStdin)
          throw new InvalidArgumentError('give the password with -p or --password-stdin, not both');
        if (!o.username) throw new InvalidArgumentError('hull login needs a user name: -u USER');
        let password = o.password;
        if (o.passwordStdin) password = (await readStdin()).replace(/\r?\n$/, '');
        if (password === undefined || password === '')
          throw new InvalidArgumentError('hull login needs a password: -p PASSWORD or --password-stdin');
        await login(ctx.root, host, { username: o.username, password }, { insecure: !tlsVerify(o.tlsVerify) });
        process.stdout.write('Login Succeeded!\n');
      },
    );

  program
    .command('logout')
    .description('forget the credentials saved for a registry')
    .argument('<registry>')
    .action((reg: string) => {
      const host = registryHost(reg);
      if (!logout(ctx.root, host)) throw new NotFoundError(`not logged in to ${host}`);
      process.stdout.write(`Removed login credentials for ${host}\n`);
    });
}

export function registerArchiveCommands(program: Command, ctx: CliContext): void {
  program
    .command('save')
    .description('write images to an archive (oci-archive or docker-archive), to a file or to stdout')
    .option('-o, --output <file>', 'the archive to write (default: stdout, when it is not a terminal)')
    .option('--format <format>', 'oci-archive or docker-archive', 'oci-archive')
    .argument('<image...>')
    .action(async (refs: string[], o: { output?: string; format: string }) => {
      if (o.format !== 'oci-archive' && o.format !== 'docker-archive')
        throw new InvalidArgumentError(`invalid --format "${o.format}": use oci-archive or docker-archive`);
      // docker's words and check
      if (o.output === undefined && process.stdout.isTTY)
        throw new InvalidArgumentError('cowardly refusing to save to a terminal. Use the -o flag or redirect');
      await saveImages(await ctx.engine(), refs, o.output ?? process.stdout, o.format);
    });

  program
    .command('load')
    .description('load images from an archive (oci-archive or docker-archive, detected), a file or stdin')
    .option('-i, --input <file>', 'the archive to read (default: stdin)')
    .option('-q, --quiet', 'no progress output (as docker: the loaded images are still named)')
    .action(async (o: { input?: string; quiet?: boolean }) => {
      if (o.input === undefined && process.stdin.isTTY)
        throw new InvalidArgumentError('requested load from stdin, but stdin is empty: use -i FILE or redirect');
      const loaded = await loadImages(await ctx.engine(), o.input ?? process.stdin);
      // docker: "Loaded image: NAME" for each name, "Loaded image ID: ID" for an image without one
      for (const l of loaded)
        process.stdout.write(l.name ? `Loaded image: ${l.name}\n` : `Loaded image ID: ${l.record.id}\n`);
    });
}
