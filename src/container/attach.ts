/**
 * Client side of conmon's attach endpoint and terminal control fifo.
 *
 * conmon (with --full-attach) listens on `<bundle>/attach`, a SOCK_SEQPACKET socket. Each
 * packet it sends starts with one byte naming the stream (2 = stdout, 3 = stderr; with a
 * terminal everything is stdout) followed by the data. Packets the client sends are written to
 * the process's stdin; a half-close (shutdown SHUT_WR) from the client closes the process's
 * stdin (unless conmon runs with --leave-stdin-open). conmon closes the connection once the
 * process has exited and its output is drained.
 *
 * Terminal size goes through the fifo `<bundle>/ctl` as text lines "1 <rows> <cols>\n"
 * (message type 1 = resize; conmon's ctrl.c then ioctl(TIOCSWINSZ)s the pty).
 *
 * The socket is reached as /proc/self/fd/<dir fd>/attach so that the address stays short
 * whatever the bundle path (sun_path holds 108 bytes).
 */
import { closeSync, constants, openSync, readlinkSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { SeqpacketSocket } from 'node-unix-socket';
import { StateError } from '../common/errors.js';
import type { StdioStreams } from '../common/instance.js';
import { instancePaths } from '../common/paths.js';
import { runProgram } from '../host/proc.js';

const require = createRequire(import.meta.url);
let addon: typeof import('node-unix-socket') | null = null;

/**
 * The SOCK_SEQPACKET addon, loaded on first use: loading it costs about 13 ms, which commands
 * that never attach (the `hull run -d` hot path) should not pay. Loaded synchronously so that
 * connecting stays synchronous.
 */
function seqpacket(): typeof import('node-unix-socket') {
  addon ??= require('node-unix-socket') as typeof import('node-unix-socket');
  return addon;
}

/** Stream bytes of conmon's attach protocol. */
export const ATTACH_STDOUT = 2;
export const ATTACH_STDERR = 3;

/** Largest stdin chunk per packet (conmon reads packets into a 32 KiB buffer). */
const STDIN_PACKET_MAX = 8192;

/**
 * A connected attach socket. Packets and the end of the connection that arrive before
 * {@link pumpAttached} takes over are kept, so no output is lost between connecting and
 * starting to copy (exec connects, then waits for the process to start).
 */
export class AttachConnection {
  private queue: Buffer[] = [];
  private onPacket: ((b: Buffer) => void) | null = null;
  private onClosed: (() => void) | null = null;
  /** the connection has ended (conmon closed it, or an error) */
  closed = false;

  constructor(readonly socket: SeqpacketSocket) {
    socket.on('data', (b: Buffer) => (this.onPacket ? this.onPacket(b) : this.queue.push(b)));
    const end = (): void => {
      if (this.closed) return;
      this.closed = true;
      this.onClosed?.();
    };
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', end); // an error ends the session; 'close' follows
  }

  /** Deliver packets (first the ones kept so far) and the end of the connection. */
  take(onPacket: (b: Buffer) => void, onClosed: () => void): void {
    this.onPacket = onPacket;
    for (const b of this.queue.splice(0)) onPacket(b);
    this.onClosed = onClosed;
    if (this.closed) onClosed();
  }

  /** Send one packet (process stdin). */
  write(b: Buffer): void {
    this.socket.write(b);
  }

  /** Half-close: conmon closes the process's stdin. */
  end(): void {
    this.socket.end();
  }

  destroy(): void {
    try {
      this.socket.destroy();
    } catch {
      /* already closed */
    }
  }
}

/**
 * Connect to the attach socket in `dir`. The connect call is made synchronously (callers
 * attach and then start the process right away). Resolves once connected; rejects with
 * StateError when nothing listens there (the process has exited or was never started).
 */
export function connectAttach(dir: string): Promise<AttachConnection> {
  let dirFd: number;
  try {
    dirFd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  } catch {
    return Promise.reject(new StateError(`cannot attach: ${dir} does not exist; the instance is not running`));
  }
  return new Promise((resolve, reject) => {
    const sock = new (seqpacket().SeqpacketSocket)();
    let settled = false;
    const done = (e?: Error): void => {
      if (settled) return;
      settled = true;
      closeSync(dirFd);
      if (e) {
        sock.destroy();
        reject(e);
      } else {
        resolve(new AttachConnection(sock));
      }
    };
    sock.once('error', (e: Error) => done(new StateError(`cannot attach: ${e.message}; the instance is not running`)));
    try {
      sock.connect(`/proc/self/fd/${dirFd}/attach`, () => done());
    } catch (e) {
      done(
        new StateError(
          `cannot attach: no attach socket in ${dir} (${(e as Error).message}); the instance is not running`,
        ),
      );
    }
  });
}

/**
 * Resize the terminal of the process behind conmon's ctl fifo in `dir`. Returns false when
 * nobody reads the fifo (conmon is gone).
 */
export function resizeTerminal(dir: string, rows: number, cols: number): boolean {
  let fd: number;
  try {
    // O_NONBLOCK: fail with ENXIO instead of hanging when conmon is not there
    fd = openSync(instancePaths(dir).conmonCtl, constants.O_WRONLY | constants.O_NONBLOCK);
  } catch {
    return false;
  }
  try {
    writeSync(fd, `1 ${Math.max(1, Math.floor(rows))} ${Math.max(1, Math.floor(cols))}\n`);
    return true;
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}

/**
 * Set the size of a created container's terminal directly, before its process runs: `pid` is the container's
 * first process, still inside the runtime (runc init, crun) and holding the terminal as its stdin. Unlike a
 * resize through conmon, the size is in place when this resolves. Nothing happens when fd 0 is not a pts.
 */
export async function setConsoleSize(pid: number, rows: number, cols: number): Promise<void> {
  if (pid <= 0) return;
  const stdin = `/proc/${pid}/fd/0`;
  let target: string;
  try {
    target = readlinkSync(stdin);
  } catch {
    return; // gone: start reports that
  }
  if (!/^\/dev\/pts\/\d+$/.test(target)) return;
  await runProgram('stty', [
    '-F',
    stdin,
    'rows',
    String(Math.max(1, Math.floor(rows))),
    'cols',
    String(Math.max(1, Math.floor(cols))),
  ]);
}

/** Pause between two resize messages, ms. */
const RESIZE_SPACING_MS = 50;

/**
 * Sends terminal sizes to conmon one message at a time. conmon before 2.1.13 handles only
 * the first line of a read from the ctl fifo (it parses the buffer's start once per line), so
 * two resizes written in a burst would lose the second one. Messages are therefore spaced out,
 * only the latest size is sent, and the final size of a burst is sent once more.
 */
export class ResizeSender {
  private timer: NodeJS.Timeout | null = null;
  private dirty = false;
  private repeat = 0;

  constructor(
    private readonly dir: string,
    private readonly size: () => { rows: number; cols: number },
  ) {}

  /** The terminal size changed (or is to be set for the first time). */
  request(): void {
    this.dirty = true;
    if (!this.timer) this.tick();
  }

  private tick(): void {
    if (this.dirty) {
      this.dirty = false;
      this.repeat = 1;
    } else if (this.repeat > 0) {
      this.repeat--;
    } else {
      this.timer = null;
      return;
    }
    const { rows, cols } = this.size();
    resizeTerminal(this.dir, rows, cols);
    this.timer = setTimeout(() => this.tick(), RESIZE_SPACING_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

/** Options of {@link attachStreams}. */
export interface AttachOptions {
  /** the process has a terminal: resize through the ctl fifo */
  tty: boolean;
  /** stop when this aborts (the process keeps running: a detach) */
  signal?: AbortSignal;
}

/**
 * Attach `stdio` to the process behind conmon's endpoint in `dir`: stdin is sent, stdout and
 * stderr are demultiplexed, terminal resizes are forwarded. Resolves when conmon closes the
 * connection (the process exited) or on abort.
 */
export async function attachStreams(dir: string, stdio: StdioStreams, o: AttachOptions): Promise<void> {
  const conn = await connectAttach(dir);
  return pumpAttached(conn, dir, stdio, o);
}

/** Drive an already connected attach socket; see {@link attachStreams}. */
export function pumpAttached(
  conn: AttachConnection,
  dir: string,
  stdio: StdioStreams,
  o: AttachOptions,
): Promise<void> {
  return new Promise((resolve) => {
    let finished = false;
    const input = stdio.stdin;
    const onInput = (chunk: Buffer | string): void => {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      for (let off = 0; off < b.length; off += STDIN_PACKET_MAX) {
        try {
          conn.write(b.subarray(off, off + STDIN_PACKET_MAX));
        } catch {
          return; // the socket is closing; its end finishes the session
        }
      }
    };
    const onInputEnd = (): void => {
      try {
        conn.end();
      } catch {
        /* already closed */
      }
    };
    const sizer = o.tty && stdio.size ? new ResizeSender(dir, stdio.size) : null;
    const resize = (): void => {
      if (!finished) sizer?.request();
    };
    const finish = (): void => {
      if (finished) return;
      finished = true;
      sizer?.stop();
      if (input) {
        input.removeListener('data', onInput);
        input.removeListener('end', onInputEnd);
      }
      o.signal?.removeEventListener('abort', finish);
      conn.destroy();
      resolve();
    };
    o.signal?.addEventListener('abort', finish, { once: true });
    if (o.signal?.aborted) return finish();
    conn.take((packet) => {
      const data = packet.subarray(1);
      if (data.length === 0) return;
      if (packet[0] === ATTACH_STDERR) stdio.stderr.write(data);
      else stdio.stdout.write(data);
    }, finish);
    if (finished) return;
    if (o.tty) {
      resize();
      stdio.onResize?.(resize);
    }
    if (input) {
      input.on('data', onInput);
      input.once('end', onInputEnd);
      input.resume?.();
    }
  });
}
