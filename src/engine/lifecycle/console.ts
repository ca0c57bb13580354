import { InvalidArgumentError, StateError } from '../../common/errors.js';
import type { StdioStreams } from '../../common/instance.js';
import type { Engine } from '../engine.js';
import { refresh } from './exit.js';

/**
 * hull console: the instance's serial console, for kinds that have one (capabilities.console). `connect`
 * is called once the console can be opened (the CLI puts its terminal into raw mode there) and its
 * `restore` when the console ends. Resolves with how it ended: the user detached, or the instance stopped.
 */
export async function consoleInstance(
  engine: Engine,
  ref: string,
  connect: () => { stdio: StdioStreams; restore(): void },
): Promise<'detached' | 'stopped'> {
  const rec = await refresh(engine, engine.store.lookup(ref));
  if (!rec || (rec.state !== 'running' && rec.state !== 'paused' && rec.state !== 'created'))
    throw new StateError(`cannot attach to the console of ${ref}: it is not running`);
  const driver = engine.driver(rec.kind);
  if (!driver.capabilities.console || !driver.console)
    throw new InvalidArgumentError(
      `${ref} is a ${rec.kind}, which has no serial console: use hull attach or hull exec`,
    );
  const term = connect();
  try {
    const how = await driver.console(engine.context(rec), term.stdio);
    if (how === 'stopped') await refresh(engine, rec);
    return how;
  } finally {
    term.restore();
  }
}
