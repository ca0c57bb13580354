/** `hull console url`: the web console's one-time login link (a subcommand beside `hull console VM`). */
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../common/errors.js';
import { loginLink, parseListen, recordedListen } from '../../engine/console.js';
import type { CliContext } from '../context.js';

export function registerConsoleUrlCommand(program: Command, ctx: CliContext): void {
  const con = program.commands.find((c) => c.name() === 'console');
  if (!con) throw new Error('hull console is not registered');
  con
    .command('url')
    .description(
      'print a one-time login link to the web console of the daemon on this root (hull daemon --listen); it works once, within 5 minutes',
    )
    .option('--listen <host:port>', "the daemon's --listen address (default: the one the running daemon recorded)")
    .action(async (o: { listen?: string }) => {
      const listen = o.listen ?? recordedListen(ctx.root);
      if (!listen)
        throw new InvalidArgumentError(
          'no hull daemon listens on TCP for this root: start one with "hull daemon --listen 127.0.0.1:8443", or name its address with --listen',
        );
      parseListen(listen);
      const engine = await ctx.engine();
      process.stdout.write(`${loginLink(engine, listen)}\n`);
    });
}
