/**
 * Client of the VM monitor's control socket (<instance dir>/ctl.sock): one JSON request line, one JSON
 * answer line, then (exec, attach) agent-protocol frames both ways. The socket is reached through
 * /proc/self/fd/<dir fd>/ctl.sock so that deep instance dirs do not overflow sun_path.
 */
import { closeSync, constants, openSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { StateError } from '../common/errors.js';
import type { CtlAnswer, CtlRequest } from './monitor.js';
import { SOCKETS } from './monitor.js';

export interface CtlSession {
  answer: CtlAnswer;
  socket: Socket;
  /** bytes that followed the answer line */
  rest: Buffer;
}

/** Connect and send `req`; resolves with the answer and the still-open socket. */
export function ctlOpen(dir: string, req: CtlRequest, name: string): Promise<CtlSession> {
  let dirFd: number;
  try {
    dirFd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  } catch {
    return Promise.reject(new StateError(`VM ${name} is not running (its directory is gone)`));
  }
  return new Promise((resolve, reject) => {
    const sock = connect(join(`/proc/self/fd/${dirFd}`, SOCKETS.ctl));
    let buf = Buffer.alloc(0);
    let settled = false;
    const fail = (e: Error): void => {
      if (settled) return;
      settled = true;
      sock.destroy();
      reject(e);
    };
    sock.once('connect', () => {
      closeSync(dirFd);
      sock.write(JSON.stringify(req) + '\n');
    });
    sock.once('error', (e: NodeJS.ErrnoException) => {
      try {
        closeSync(dirFd);
      } catch {
        /* closed on connect */
      }
      fail(
        e.code === 'ENOENT' || e.code === 'ECONNREFUSED'
          ? new StateError(`VM ${name} is not running (its monitor does not answer)`)
          : e,
      );
    });
    const onData = (b: Buffer): void => {
      buf = Buffer.concat([buf, b]);
      const nl = buf.indexOf(10);
      if (nl < 0) return;
      sock.off('data', onData);
      sock.pause();
      settled = true;
      try {
        resolve({
          answer: JSON.parse(buf.subarray(0, nl).toString()) as CtlAnswer,
          socket: sock,
          rest: buf.subarray(nl + 1),
        });
      } catch {
        sock.destroy();
        reject(new StateError(`VM ${name}: its monitor answered something unreadable`));
      }
    };
    sock.on('data', onData);
    sock.once('close', () => fail(new StateError(`VM ${name}: its monitor closed the connection without answering`)));
  });
}

/** A plain request: the answer, connection closed. */
export async function ctlRequest(dir: string, req: CtlRequest, name: string): Promise<CtlAnswer> {
  const s = await ctlOpen(dir, req, name);
  s.socket.destroy();
  return s.answer;
}
