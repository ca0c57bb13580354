/**
 * Long operations (image pulls): started by a request that answers at once with the operation's id, followed by
 * polling `GET /hull/v1/operations/{id}` or a WebSocket on the same path. Kept in the daemon's memory (an operation
 * does not outlive the daemon); finished ones are forgotten an hour after they end, at most 200 are kept.
 */
import { randomBytes } from 'node:crypto';

export type OperationState = 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface LayerProgress {
  digest: string;
  state: string;
  current: number;
  total: number;
}

export interface Operation {
  id: string;
  kind: 'pull';
  target: string;
  state: OperationState;
  created: string;
  finished: string | null;
  progress: { current: number; total: number; layers: LayerProgress[] };
  result: Record<string, unknown> | null;
  error: string | null;
}

type Listener = (op: Operation) => void;

export class Operations {
  private readonly ops = new Map<
    string,
    { op: Operation; ac: AbortController; listeners: Set<Listener>; at: number }
  >();

  /** Start `work`; it reports layer progress through `progress` and resolves with the result. */
  start(
    kind: Operation['kind'],
    target: string,
    work: (signal: AbortSignal, progress: (l: LayerProgress) => void) => Promise<Record<string, unknown>>,
  ): Operation {
    this.forgetOld();
    const op: Operation = {
      id: randomBytes(16).toString('hex'),
      kind,
      target,
      state: 'running',
      created: new Date().toISOString(),
      finished: null,
      progress: { current: 0, total: 0, layers: [] },
      result: null,
      error: null,
    };
    const entry = { op, ac: new AbortController(), listeners: new Set<Listener>(), at: Date.now() };
    this.ops.set(op.id, entry);
    const notify = () => {
      for (const l of entry.listeners) l(op);
    };
    const progress = (l: LayerProgress) => {
      const i = op.progress.layers.findIndex((x) => x.digest === l.digest);
      if (i >= 0) op.progress.layers[i] = l;
      else op.progress.layers.push(l);
      op.progress.current = op.progress.layers.reduce((a, x) => a + x.current, 0);
      op.progress.total = op.progress.layers.reduce((a, x) => a + x.total, 0);
      notify();
    };
    void work(entry.ac.signal, progress)
      .then(
        (result) => {
          op.state = 'succeeded';
          op.result = result;
        },
        (e: unknown) => {
          op.state = entry.ac.signal.aborted ? 'cancelled' : 'failed';
          op.error = e instanceof Error ? e.message : String(e);
        },
      )
      .finally(() => {
        op.finished = new Date().toISOString();
        entry.at = Date.now();
        notify();
        entry.listeners.clear();
      });
    return op;
  }

  get(id: string): Operation | undefined {
    return this.ops.get(id)?.op;
  }

  list(): Operation[] {
    return [...this.ops.values()].map((e) => e.op);
  }

  /** Follow an operation: `l` on each change until it ends (at once, once, if it has ended); returns the unsubscribe. */
  follow(id: string, l: Listener): () => void {
    const e = this.ops.get(id);
    if (!e) return () => undefined;
    if (e.op.state !== 'running') {
      l(e.op);
      return () => undefined;
    }
    e.listeners.add(l);
    return () => e.listeners.delete(l);
  }

  cancel(id: string): boolean {
    const e = this.ops.get(id);
    if (e?.op.state !== 'running') return false;
    e!.ac.abort();
    return true;
  }

  /** The daemon stops: cancel what runs. */
  cancelAll(): void {
    for (const e of this.ops.values()) if (e.op.state === 'running') e.ac.abort();
  }

  private forgetOld(): void {
    const old = Date.now() - 3600_000;
    const done = [...this.ops.values()].filter((e) => e.op.state !== 'running');
    for (const e of done) if (e.at < old || this.ops.size > 200) this.ops.delete(e.op.id);
  }
}
