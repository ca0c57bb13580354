/**
 * Instances' graphical displays (`--display`): a VM's screen (QEMU's VNC server) or a graphical container's
 * virtual X display (its Xvnc), both served as raw RFB on a unix socket in the instance dir. The driver says
 * whether an instance has one and where (InstanceDriver.display); `hull vnc` and the daemon's
 * /hull/v1/instances/{id}/vnc WebSocket connect through here.
 */
import type { Socket } from 'node:net';
import { NotFoundError, StateError } from '../common/errors.js';
import type { InstanceDisplay } from '../common/instance.js';
import { connectUnix } from '../host/unixsock.js';
import type { Engine } from './engine.js';
import { refresh } from './lifecycle/exit.js';
import type { InstanceRecord } from './store.js';

/** The instance's display as configured, or null. */
export function displayOf(engine: Engine, rec: InstanceRecord): InstanceDisplay | null {
  return engine.driver(rec.kind).display?.(engine.context(rec)) ?? null;
}

/** The display of an instance that has one and runs (paused: its last screen); errors say which is missing. */
export async function liveDisplay(
  engine: Engine,
  rec: InstanceRecord,
): Promise<{ rec: InstanceRecord; display: InstanceDisplay }> {
  const display = displayOf(engine, rec);
  if (!display)
    throw new NotFoundError(
      `${rec.name} has no display: create it with --display vnc (a VM with --device-model emulated or a disk image; a container with an X11 application)`,
    );
  const cur = (await refresh(engine, rec)) ?? rec;
  if (cur.state !== 'running' && cur.state !== 'paused')
    throw new StateError(`the display of ${rec.name} is not there: it is ${cur.state}; start it first`);
  return { rec: cur, display };
}

/** A connection to the instance's VNC server (raw RFB). */
export async function connectDisplay(engine: Engine, rec: InstanceRecord): Promise<Socket> {
  const { rec: cur, display } = await liveDisplay(engine, rec);
  return connectUnix(display.socket).catch((e: NodeJS.ErrnoException) => {
    throw new StateError(
      `cannot reach the display of ${cur.name} (${display.socket}): ${e.code ?? e.message}; it may be starting or stopping, try again`,
    );
  });
}
