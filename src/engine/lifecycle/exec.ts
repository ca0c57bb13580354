import type { ExecOptions, StdioStreams } from '../../common/instance.js';
import { CommandNotExecutableError, CommandNotFoundError, ExecStartError, StateError } from '../../common/errors.js';
import type { Engine } from '../engine.js';
import type { InstanceRecord } from '../store.js';
import { refresh } from './exit.js';

/**
 * exec: run a further process in a running instance; resolves with its exit code. A command that cannot be
 * started (not found, not executable) fails with ExecStartError (126, docker's exec message) for every driver.
 */
export async function execInstance(
  engine: Engine,
  ref: InstanceRecord,
  opts: ExecOptions,
  stdio: StdioStreams,
): Promise<number> {
  const rec = await refresh(engine, ref);
  if (!rec || rec.state !== 'running') {
    throw new StateError(
      `cannot exec in instance ${ref.name}: it is ${rec?.state ?? 'removed'}${rec?.state === 'paused' ? ` (hull unpause ${ref.name})` : ` (hull start ${ref.name})`}`,
    );
  }
  engine.event(rec, 'exec_start', { command: opts.command.join(' ') });
  let code: number;
  try {
    code = await engine.driver(rec.kind).exec(engine.context(rec), opts, stdio);
  } catch (e) {
    if (e instanceof CommandNotFoundError || e instanceof CommandNotExecutableError) {
      engine.event(rec, 'exec_die', { exitCode: '126' });
      if (e instanceof CommandNotFoundError) throw new ExecStartError('not-found', opts.command[0] ?? '', { cause: e });
      // the drivers' words for a command that is there but cannot run; anything else (a VM's unknown user) as said
      const why = /exec format error/i.test(e.message)
        ? 'exec format error'
        : /permission denied|is a directory|operation not permitted/i.test(e.message)
          ? 'permission denied'
          : e.message;
      throw new ExecStartError('not-executable', opts.command[0] ?? '', { cause: e, why });
    }
    throw e;
  }
  engine.event(rec, 'exec_die', { exitCode: String(code) });
  return code;
}
