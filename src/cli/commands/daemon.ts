/** `hull daemon`: serve the engine over the Docker Engine API (src/api/daemon.ts). */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import type { CliContext } from '../context.js';
import { InvalidArgumentError } from '../../common/errors.js';
import { hullEnv } from '../../common/env.js';
import { hostPaths } from '../../common/paths.js';
import { runDaemon } from '../../api/daemon.js';
import { VERSION } from './system.js';

export function registerDaemonCommand(program: Command, ctx: CliContext): void {
  program
    .command('daemon')
    .description(
      'serve the Docker Engine API (v1.41) on a unix socket, so that docker clients drive hull (DOCKER_HOST=unix://SOCKET)',
    )
    .option('--socket <path>', `unix socket (default ${hostPaths.daemonSocket}, or $HULL_SOCKET)`)
    .option('--listen <host:port>', 'also listen on TCP; needs --tls-cert/--tls-key/--tls-ca or --token-file')
    .option('--tls-cert <file>', "TCP: the server's certificate (PEM)")
    .option('--tls-key <file>', "TCP: the server's key (PEM)")
    .option('--tls-ca <file>', 'TCP: the CA that signs client certificates (PEM); clients without one are refused')
    .option('--token-file <file>', 'TCP: a file with the bearer token clients send (Authorization: Bearer …)')
    .action(
      async (o: {
        socket?: string;
        listen?: string;
        tlsCert?: string;
        tlsKey?: string;
        tlsCa?: string;
        tokenFile?: string;
      }) => {
        const tlsGiven = [o.tlsCert, o.tlsKey, o.tlsCa].filter((x) => x !== undefined).length;
        if (tlsGiven !== 0 && tlsGiven !== 3)
          throw new InvalidArgumentError('TLS needs all three of --tls-cert, --tls-key and --tls-ca');
        if ((tlsGiven || o.tokenFile) && o.listen === undefined)
          throw new InvalidArgumentError('--tls-* and --token-file apply to --listen; add --listen HOST:PORT');
        const socket = resolve(o.socket ?? hullEnv('HULL_SOCKET') ?? hostPaths.daemonSocket);
        const engine = await ctx.engine();
        await runDaemon(engine, {
          socket,
          version: VERSION,
          ...(o.listen !== undefined ? { listen: o.listen } : {}),
          ...(tlsGiven ? { tls: { cert: o.tlsCert!, key: o.tlsKey!, ca: o.tlsCa! } } : {}),
          ...(o.tokenFile ? { tokenFile: o.tokenFile } : {}),
        });
        engine.close();
      },
    );
}
