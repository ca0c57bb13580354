/**
 * Connecting to a unix socket whatever the length of its path: sun_path holds 107 bytes, and an instance dir
 * under a deep root is longer than that. The socket is reached as /proc/self/fd/<fd of its directory>/<name>
 * (conmon's attach socket and the VM monitor's are reached the same way).
 */
import { closeSync, openSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { basename, dirname } from 'node:path';

/** A connected socket; rejects with the connect error (ENOENT when nothing listens there, ECONNREFUSED, …). */
export function connectUnix(path: string): Promise<Socket> {
  let dirFd: number;
  try {
    dirFd = openSync(dirname(path), 'r');
  } catch (e) {
    return Promise.reject(e as Error);
  }
  return new Promise<Socket>((resolve, reject) => {
    const sock = connect(`/proc/self/fd/${dirFd}/${basename(path)}`);
    const done = () => {
      try {
        closeSync(dirFd);
      } catch {
        /* closed */
      }
    };
    sock.once('connect', () => {
      done();
      sock.removeListener('error', reject);
      resolve(sock);
    });
    sock.once('error', (e) => {
      done();
      reject(e);
    });
  });
}
