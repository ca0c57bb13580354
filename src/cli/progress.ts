/**
 * Progress of pulls and pushes on stderr. On a terminal: one line per blob, redrawn in place
 * (at most ten times a second). Otherwise: one plain line per blob when it is settled
 * (skipped, mounted, done) and when it is retried, so logs stay short.
 */
import type { TransferEvent } from '../engine/transfer.js';
import { bytes } from './format.js';

const short = (digest: string) => digest.slice(7, 19);

export class TransferProgress {
  private readonly tty: boolean;
  private readonly blobs = new Map<string, Extract<TransferEvent, { kind: 'blob' }>>();
  private drawn = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly verb: 'pull' | 'push',
    private readonly quiet: boolean,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {
    this.tty = !!out.isTTY;
  }

  readonly onEvent = (e: TransferEvent): void => {
    if (this.quiet) return;
    if (e.kind === 'resolved') {
      this.line(`${this.verb === 'pull' ? 'Pulling' : 'Pushing'} ${e.ref} (${e.digest})`);
      return;
    }
    const before = this.blobs.get(e.digest);
    this.blobs.set(e.digest, e);
    if (this.tty) {
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        this.draw();
      }, 100);
      return;
    }
    if (e.state !== before?.state && e.state !== 'transferring' && e.state !== 'waiting')
      this.out.write(this.text(e) + '\n');
  };

  /** Draw the final state (call once the transfer ended, successfully or not). */
  finish(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.tty && !this.quiet) this.draw();
  }

  private line(s: string): void {
    if (this.tty) this.draw();
    this.out.write(s + '\n');
    this.drawn = 0;
  }

  private text(e: Extract<TransferEvent, { kind: 'blob' }>): string {
    const status = {
      waiting: 'waiting',
      exists: this.verb === 'pull' ? 'already exists' : 'already in the registry',
      mounted: 'mounted from another repository',
      transferring: `${this.verb === 'pull' ? 'downloading' : 'uploading'} ${bytes(e.done)} / ${bytes(e.size)}`,
      retrying: 'retrying',
      done: `${this.verb === 'pull' ? 'downloaded' : 'pushed'} ${bytes(e.size)}`,
    }[e.state];
    return `Blob ${short(e.digest)}: ${status}`;
  }

  private draw(): void {
    let s = this.drawn ? `\x1b[${this.drawn}A` : '';
    for (const e of this.blobs.values()) s += `\x1b[2K${this.text(e)}\n`;
    this.drawn = this.blobs.size;
    this.out.write(s);
  }
}
