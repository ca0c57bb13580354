/** `hull daemon`: serve the engine over the Docker Engine API and hull's API (src/api/daemon.ts). */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import type { CliContext } from '../context.js';
import { InvalidArgumentError } from '../../common/errors.js';
import { hullEnv } from '../../common/env.js';
import { parseGoDuration } from '../../common/parse.js';
import { hostPaths } from '../../common/paths.js';
import { VERSION } from './system.js';

export function registerDaemonCommand(program: Command, ctx: CliContext): void {
  program
    .command('daemon')
    .description(
      "serve the Docker Engine API (v1.41) and hull's API on a unix socket, so that docker clients drive hull (DOCKER_HOST=unix://SOCKET); with --listen, also over HTTPS with the web console",
    )
    .option('--socket <path>', `unix socket (default ${hostPaths.daemonSocket}, or $HULL_SOCKET)`)
    .option(
      '--listen <host:port>',
      'also listen on TCP over HTTPS, with the web console (log in with "hull console url"); clients authenticate with a console session, --token-file\'s bearer token, or --tls-ca client certificates',
    )
    .option('--tls-cert <file>', "TCP: the server's certificate (PEM); default: a self-signed one made on first start")
    .option('--tls-key <file>', "TCP: the server's key (PEM), with --tls-cert")
    .option(
      '--tls-ca <file>',
      'TCP: require client certificates signed by this CA (PEM); clients without one are refused',
    )
    .option('--token-file <file>', 'TCP: a file with a bearer token clients may send (Authorization: Bearer …)')
    .option('--session-ttl <duration>', 'TCP: how long a web console session lasts (default 12h)')
    .action(
      async (o: {
        socket?: string;
        listen?: string;
        tlsCert?: string;
        tlsKey?: string;
        tlsCa?: string;
        tokenFile?: string;
        sessionTtl?: string;
      }) => {
        if ((o.tlsCert === undefined) !== (o.tlsKey === undefined))
          throw new InvalidArgumentError(
            '--tls-cert and --tls-key go together: give both, or neither for a self-signed pair',
          );
        if ((o.tlsCert || o.tlsCa || o.tokenFile || o.sessionTtl) && o.listen === undefined)
          throw new InvalidArgumentError(
            '--tls-*, --token-file and --session-ttl apply to --listen; add --listen HOST:PORT',
          );
        let sessionTtlMs: number | undefined;
        if (o.sessionTtl !== undefined) {
          sessionTtlMs = parseGoDuration(o.sessionTtl, '--session-ttl');
          if (sessionTtlMs < 1000)
            throw new InvalidArgumentError('invalid --session-ttl: give at least 1s (12h by default)');
        }
        const socket = resolve(o.socket ?? hullEnv('HULL_SOCKET') ?? hostPaths.daemonSocket);
        const engine = await ctx.engine();
        // loaded only for this command: the API (and node:http) would slow every other command's start-up
        const { runDaemon } = await import('../../api/daemon.js');
        await runDaemon(engine, {
          socket,
          version: VERSION,
          ...(o.listen !== undefined ? { listen: o.listen } : {}),
          ...(o.tlsCert || o.tlsCa
            ? {
                tls: {
                  ...(o.tlsCert ? { cert: o.tlsCert, key: o.tlsKey! } : {}),
                  ...(o.tlsCa ? { ca: o.tlsCa } : {}),
                },
              }
            : {}),
          ...(o.tokenFile ? { tokenFile: o.tokenFile } : {}),
          ...(sessionTtlMs !== undefined ? { sessionTtlMs } : {}),
        });
        engine.close();
      },
    );
}
