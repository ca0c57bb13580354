import type { ExecOptions, StdioStreams } from '../../common/instance.js';
import { StateError } from '../../common/errors.js';
import type { Engine } from '../engine.js';
import type { InstanceRecord } from '../store.js';
import { refresh } from './exit.js';

/** exec: run a further process in a running instance; resolves with its exit code. */
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
  const code = await engine.driver(rec.kind).exec(engine.context(rec), opts, stdio);
  engine.event(rec, 'exec_die', { exitCode: String(code) });
  return code;
}
