/**
 * A client of the QEMU guest agent (qemu-ga, the image's qemu-guest-agent package) of a full OS disk VM. The
 * guest's agent reads the virtio-serial port org.qemu.guest_agent.0; QEMU joins that port to a socket in the
 * instance dir (qga.sock), which hull's VM monitor listens on, as it does for QMP.
 *
 * The protocol is QMP's wire format without a greeting: one JSON command, one JSON answer
 * ({"return": …} or {"error": {class, desc}}), strictly in turn (qemu-ga echoes no ids). Anything may be left in
 * the pipe by an earlier client or a command that timed out, so the client resynchronises with
 * guest-sync-delimited: it sends 0xFF (qemu-ga's parser drops what it had), the command with a fresh id, and
 * discards every byte up to the 0xFF qemu-ga sends back before the matching {"return": id}. It does that first
 * and again after any timeout. guest-shutdown answers nothing when it succeeds.
 */
import type { Socket } from 'node:net';
import { GuestAgentError } from '../common/errors.js';

/** guest-exec-status */
export interface GuestExecStatus {
  exited: boolean;
  exitcode?: number;
  signal?: number;
  'out-data'?: string;
  'err-data'?: string;
  'out-truncated'?: boolean;
  'err-truncated'?: boolean;
}

/** guest-network-get-interfaces, one interface */
export interface GuestInterface {
  name: string;
  'hardware-address'?: string;
  'ip-addresses'?: { 'ip-address-type': 'ipv4' | 'ipv6'; 'ip-address': string; prefix: number }[];
}

/** One guest address as hull shows it (inspect's Hull.GuestAddresses). */
export interface GuestAddress {
  interface: string;
  mac?: string;
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

interface Waiter {
  command: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** Default time a command may take (the guest may be busy; TCG is slow). */
export const GUEST_COMMAND_TIMEOUT_MS = 10_000;

export class GuestAgentClient {
  private buf: Buffer = Buffer.alloc(0);
  /** the sync id awaited, while resynchronising: bytes before the 0xFF marker are dropped */
  private syncing: { id: number; seenMarker: boolean } | null = null;
  private waiter: Waiter | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private synced = false;
  private closed: Error | null = null;

  constructor(private readonly sock: Socket) {
    sock.on('data', (b: Buffer) => this.onData(b));
    const gone = (): void => {
      this.closed ??= new GuestAgentError('the guest agent channel closed (QEMU exited?)');
      this.fail(this.closed);
    };
    sock.on('close', gone);
    sock.on('error', gone);
  }

  get isClosed(): boolean {
    return this.closed !== null;
  }

  /** Forget the state of the guest's side: the next command resynchronises first (the guest reopened the port). */
  reset(): void {
    this.synced = false;
  }

  private fail(e: Error): void {
    const w = this.waiter;
    this.waiter = null;
    if (w) {
      clearTimeout(w.timer);
      w.reject(e);
    }
  }

  private onData(b: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, b]) : b;
    for (;;) {
      if (this.syncing && !this.syncing.seenMarker) {
        const m = this.buf.indexOf(0xff);
        if (m < 0) {
          this.buf = Buffer.alloc(0);
          return;
        }
        this.buf = this.buf.subarray(m + 1);
        this.syncing.seenMarker = true;
      }
      const nl = this.buf.indexOf(10);
      if (nl < 0) return;
      const line = this.buf.subarray(0, nl).toString('utf8').trim();
      this.buf = this.buf.subarray(nl + 1);
      if (!line) continue;
      let msg: { return?: unknown; error?: { class?: string; desc?: string } };
      try {
        msg = JSON.parse(line) as typeof msg;
      } catch {
        continue; // a fragment of an old answer: ignore
      }
      if (this.syncing) {
        if (msg.return === this.syncing.id) {
          this.syncing = null;
          this.settle(null, msg.return);
        }
        continue; // a stale answer from before the sync
      }
      if (msg.error) this.settle(new GuestAgentError(msg.error.desc ?? 'unknown error'), undefined);
      else this.settle(null, msg.return);
    }
  }

  private settle(err: Error | null, value: unknown): void {
    const w = this.waiter;
    if (!w) return; // an answer nobody waits for (after a timeout): the next command resyncs
    this.waiter = null;
    clearTimeout(w.timer);
    if (err) w.reject(new GuestAgentError(`the guest agent refused ${w.command}: ${err.message}`));
    else w.resolve(value);
  }

  private send(command: string, payload: Buffer, timeoutMs: number, expectAnswer: boolean): Promise<unknown> {
    if (this.closed) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => {
      if (!expectAnswer) {
        this.sock.write(payload, (e) => (e ? reject(e) : resolve(undefined)));
        return;
      }
      const timer = setTimeout(() => {
        if (this.waiter?.timer !== timer) return;
        this.waiter = null;
        this.synced = false;
        this.syncing = null;
        reject(
          new GuestAgentError(`the guest agent did not answer ${command} within ${Math.round(timeoutMs / 1000)} s`),
        );
      }, timeoutMs);
      this.waiter = { command, resolve, reject, timer };
      this.sock.write(payload);
    });
  }

  private async sync(timeoutMs: number): Promise<void> {
    const id = Math.floor(Math.random() * 2 ** 31);
    this.syncing = { id, seenMarker: false };
    this.buf = Buffer.alloc(0);
    const cmd = JSON.stringify({ execute: 'guest-sync-delimited', arguments: { id } });
    await this.send(
      'guest-sync-delimited',
      Buffer.concat([Buffer.from([0xff]), Buffer.from(cmd + '\n')]),
      timeoutMs,
      true,
    );
    this.synced = true;
  }

  /**
   * Run one command (in turn with the others), resynchronising first when needed. `noAnswer`: the command
   * answers nothing on success (guest-shutdown); it resolves once written.
   */
  execute<R = unknown>(
    command: string,
    args?: Record<string, unknown>,
    o: { timeoutMs?: number; noAnswer?: boolean } = {},
  ): Promise<R> {
    const timeoutMs = o.timeoutMs ?? GUEST_COMMAND_TIMEOUT_MS;
    const run = async (): Promise<R> => {
      if (!this.synced) await this.sync(Math.min(timeoutMs, 5000));
      const line = Buffer.from(
        JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }) + '\n',
      );
      const r = await this.send(command, line, timeoutMs, !o.noAnswer);
      // no answer expected: whatever comes next is unknown until the next sync
      if (o.noAnswer) this.synced = false;
      return r as R;
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  close(): void {
    this.sock.destroy();
  }
}

/** guest-network-get-interfaces → the guest's addresses, loopback left out. */
export function guestAddresses(ifaces: GuestInterface[]): GuestAddress[] {
  const out: GuestAddress[] = [];
  for (const i of ifaces) {
    if (i.name === 'lo') continue;
    for (const a of i['ip-addresses'] ?? [])
      out.push({
        interface: i.name,
        ...(i['hardware-address'] ? { mac: i['hardware-address'] } : {}),
        address: a['ip-address'],
        prefix: a.prefix,
        family: a['ip-address-type'],
      });
  }
  return out;
}
