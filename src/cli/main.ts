import { Command, CommanderError } from 'commander';
import { createContext, mayUseReserve, type CliContext } from './context.js';
import { registerInstanceCommands } from './commands/instances.js';
import { registerImageCommands } from './commands/images.js';
import { registerArchiveCommands, registerRegistryCommands } from './commands/registry.js';
import { registerSystemCommands, VERSION } from './commands/system.js';
import { registerBuildCommand, registerBuilderCommands } from './commands/build.js';
import { registerNetworkCommands } from './commands/network.js';
import { registerVolumeCommands } from './commands/volume.js';
import { registerStorageCommands } from './commands/storage.js';
import { registerDiffCommand } from './commands/diff.js';
import { registerCpCommands } from './commands/cp.js';
import { registerVmCommands } from './commands/vm.js';
import { errorLine, exitStatus } from './errors.js';
import { commandPath, registerManagementCommands } from './management.js';
import { MANAGEMENT_GROUPS } from './groups.js';
import { registerRenameCommand } from './commands/rename.js';
import { registerDaemonCommand } from './commands/daemon.js';
import { registerConsoleUrlCommand } from './commands/console.js';
import { trace } from '../common/trace.js';
import { hullEnv } from '../common/env.js';

/** hull's command line. Exit codes follow docker (see exitStatus and docs/cli.md). */
export async function main(argv: string[]): Promise<number> {
  trace('cli loaded');
  let ctx: CliContext = createContext(undefined);
  let command = '';
  const program = new Command('hull')
    .description('hull: run OCI images as containers or virtual machines')
    .version(VERSION, '--version', 'show the version')
    .option('--root <dir>', 'state directory (default /var/lib/hull, or $HULL_ROOT)')
    .enablePositionalOptions()
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s.startsWith('error:') ? `hull: ${s.slice(7)}` : s) })
    .hook('preAction', (cmd, action) => {
      const root = cmd.opts<{ root?: string }>().root;
      if (root !== undefined && root !== ctx.root) ctx = createContext(root);
      command = commandPath(action, cmd);
      ctx.mayUseReserve = mayUseReserve(command);
    });
  const proxy: CliContext = {
    get root() {
      return ctx.root;
    },
    engine: (o) => ctx.engine(o),
    get exitCode() {
      return ctx.exitCode;
    },
    get mayUseReserve() {
      return ctx.mayUseReserve;
    },
    set exitCode(v: number) {
      ctx.exitCode = v;
    },
  };
  registerInstanceCommands(program, proxy);
  registerImageCommands(program, proxy);
  registerRegistryCommands(program, proxy);
  registerArchiveCommands(program, proxy);
  registerSystemCommands(program, proxy);
  registerBuildCommand(program, proxy);
  registerBuilderCommands(program, proxy);
  registerNetworkCommands(program, proxy);
  registerVolumeCommands(program, proxy);
  registerStorageCommands(program, proxy);
  registerDiffCommand(program, proxy);
  registerCpCommands(program, proxy);
  registerVmCommands(program, proxy);
  registerRenameCommand(program, proxy);
  registerDaemonCommand(program, proxy);
  registerConsoleUrlCommand(program, proxy);
  registerManagementCommands(program, proxy, MANAGEMENT_GROUPS);
  for (const c of program.commands) c.exitOverride();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return ctx.exitCode;
  } catch (e) {
    // commander has printed its own message
    if (!(e instanceof CommanderError)) {
      process.stderr.write(`hull: ${errorLine(e)}\n`);
      if (hullEnv('HULL_DEBUG') && (e as Error).stack) process.stderr.write((e as Error).stack + '\n');
    }
    return exitStatus(e, command);
  }
}

// A reader that goes away (hull ps | head -1) ends hull quietly, as it ends other command-line tools.
for (const s of [process.stdout, process.stderr]) {
  s.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
    throw e;
  });
}

/** Resolves once everything written to `s` so far has been handed to the OS (a pipe's reader may be slow). */
function flushed(s: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => s.write('', () => resolve()));
}

void main(process.argv.slice(2)).then(async (code) => {
  process.exitCode = code;
  // Nothing should keep the process alive after a command; end promptly even if a handle lingers, but only once
  // the output is out: process.exit drops whatever a slow pipe reader has not taken yet.
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  setImmediate(() => process.exit(code));
});
