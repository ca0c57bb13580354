/**
 * A QMP (QEMU Machine Protocol) client: JSON objects over a stream socket, one per line from QEMU.
 * QEMU greets with {"QMP": …}; the client must send qmp_capabilities before anything else. Commands carry
 * an "id" that QEMU echoes in its {"return": …} or {"error": {class, desc}} answer; asynchronous events
 * ({"event": …}) may arrive between answers at any time.
 *
 * hull's monitor listens on the socket and QEMU connects to it (-chardev socket,…,server=off), so no
 * side polls for the other to appear: the client is created on the accepted connection.
 */
import type { Socket } from 'node:net';
import { HullError } from '../common/errors.js';

/** QEMU refused a command. */
export class QmpError extends HullError {
  override readonly code: string = 'HULL_QMP';
  constructor(
    readonly command: string,
    readonly errorClass: string,
    desc: string,
  ) {
    super(`QEMU refused ${command}: ${desc}`);
  }
}

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

interface Pending {
  command: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

export class QmpClient {
  private buf = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private readonly listeners: ((e: QmpEvent) => void)[] = [];
  private greeted: Promise<void>;
  private closedError: Error | null = null;
  /** QEMU's version, from the greeting */
  version = '';

  constructor(private readonly sock: Socket) {
    let greet!: () => void;
    let fail!: (e: Error) => void;
    this.greeted = new Promise((res, rej) => {
      greet = res;
      fail = rej;
    });
    this.greeted.catch(() => undefined);
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      this.buf += chunk;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl).trim();
        this.buf = this.buf.slice(nl + 1);
        if (!line) continue;
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue; // not JSON: ignore rather than lose the session
        }
        if ('QMP' in msg) {
          const q = (msg.QMP as { version?: { qemu?: { major: number; minor: number; micro: number } } }).version?.qemu;
          if (q) this.version = `${q.major}.${q.minor}.${q.micro}`;
          greet();
        } else if ('event' in msg) {
          for (const l of this.listeners) l(msg as unknown as QmpEvent);
        } else if ('id' in msg) {
          const p = this.pending.get(String(msg.id));
          if (!p) continue;
          this.pending.delete(String(msg.id));
          if ('error' in msg) {
            const e = msg.error as { class?: string; desc?: string };
            p.reject(new QmpError(p.command, e.class ?? 'GenericError', e.desc ?? 'unknown error'));
          } else {
            p.resolve(msg.return);
          }
        }
      }
    });
    const closed = (): void => {
      this.closedError ??= new HullError('the QEMU monitor connection closed (QEMU exited?)');
      fail(this.closedError);
      for (const p of this.pending.values()) p.reject(this.closedError);
      this.pending.clear();
    };
    sock.on('close', closed);
    sock.on('error', closed);
  }

  /** Wait for the greeting and leave capabilities negotiation mode. */
  async handshake(): Promise<void> {
    await this.greeted;
    await this.execute('qmp_capabilities');
  }

  onEvent(fn: (e: QmpEvent) => void): void {
    this.listeners.push(fn);
  }

  execute<R = unknown>(command: string, args?: Record<string, unknown>): Promise<R> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = String(this.nextId++);
    return new Promise<R>((resolve, reject) => {
      this.pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject });
      this.sock.write(
        JSON.stringify(args ? { execute: command, arguments: args, id } : { execute: command, id }) + '\n',
      );
    });
  }

  close(): void {
    this.sock.destroy();
  }
}
