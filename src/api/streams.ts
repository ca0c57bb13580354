/**
 * The daemon's long-lived answers (followed logs, waits, attach and exec sessions): each gets an AbortSignal that
 * fires when its client goes away or the daemon stops, so that nothing keeps running for a reader that is gone.
 */
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

export class Streams {
  private readonly open = new Map<object, { ac: AbortController; cut: () => void }>();

  /** A streamed answer: aborted when the client disconnects. */
  track(res: ServerResponse): AbortController {
    const ac = new AbortController();
    const onClose = () => ac.abort();
    res.on('close', onClose);
    this.open.set(res, { ac, cut: () => res.destroy() });
    return ac;
  }

  untrack(res: ServerResponse): void {
    this.open.delete(res);
  }

  /** A hijacked connection: aborted when the client disconnects. */
  trackSocket(socket: Duplex): AbortController {
    const ac = new AbortController();
    socket.on('close', () => ac.abort());
    socket.on('error', () => ac.abort());
    this.open.set(socket, { ac, cut: () => socket.destroy() });
    return ac;
  }

  untrackSocket(socket: Duplex): void {
    this.open.delete(socket);
  }

  get size(): number {
    return this.open.size;
  }

  /** The daemon stops: end every stream (the instances behind them keep running). */
  cutAll(): void {
    for (const { ac, cut } of this.open.values()) {
      ac.abort();
      cut();
    }
    this.open.clear();
  }
}
