/**
 * Long operations (image pulls, builds, boots): started by a request that answers at once (202) with the
 * operation, followed by polling `GET /hull/v1/operations/{id}` or a WebSocket on the same path. Recorded in the
 * state store (when and as they change, progress at most once a second), so that a restarted daemon lists them:
 * those that were running when the daemon went are `failed` with "interrupted by a daemon restart". The newest
 * 200 are kept; finished ones are forgotten an hour after they end.
 */
import { randomBytes } from 'node:crypto';

export type OperationState = 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface LayerProgress {
  digest: string;
  state: string;
  current: number;
  total: number;
}

export type OperationKind = 'pull' | 'build' | 'boot';

export interface Operation {
  id: string;
  kind: OperationKind;
  target: string;
  state: OperationState;
  created: string;
  finished: string | null;
  /**
   * pulls: bytes over the layers; builds: the step (current of total); boots: the phase (current of total).
   * `phase` says what happens now; `log` keeps a build's last output lines.
   */
  progress: { current: number; total: number; layers: LayerProgress[]; phase: string | null; log: string[] };
  result: Record<string, unknown> | null;
  error: string | null;
}

type Listener = (op: Operation) => void;

/** What a running operation reports. */
export interface Progress {
  /** a layer's bytes (pulls) */
  layer(l: LayerProgress): void;
  /** the step or phase: current of total, and what it is */
  phase(current: number, total: number, what: string): void;
  /** an output line (builds: the last 100 are kept) */
  line(text: string): void;
}

/** Where operations are recorded (the engine's state store). */
export interface OperationRecorder {
  putOperation(op: Operation): void;
  operations(): Record<string, unknown>[];
}

export const INTERRUPTED = 'interrupted by a daemon restart';
const LOG_LINES = 100;
/** progress is recorded at most this often (start, phase changes and the end at once) */
const RECORD_MS = 1000;

export class Operations {
  private readonly ops = new Map<
    string,
    { op: Operation; ac: AbortController; listeners: Set<Listener>; at: number; cancellable: boolean }
  >();
  private readonly running = new Set<Promise<unknown>>();

  /**
   * `recorder` (the state store): the operations it recorded are listed again; those that were running are failed,
   * interrupted by the restart of the daemon.
   */
  constructor(
    private readonly recorder?: OperationRecorder,
    private readonly log: (line: string) => void = () => undefined,
  ) {
    for (const raw of recorder?.operations() ?? []) {
      const op = raw as unknown as Operation;
      op.progress = { ...{ current: 0, total: 0, layers: [], phase: null, log: [] }, ...op.progress };
      if (op.state === 'running') {
        op.state = 'failed';
        op.error = INTERRUPTED;
        op.finished = new Date().toISOString();
        this.record(op);
      }
      this.ops.set(op.id, {
        op,
        ac: new AbortController(),
        listeners: new Set(),
        at: Date.parse(op.finished ?? op.created) || Date.now(),
        cancellable: false,
      });
    }
  }

  private record(op: Operation): void {
    try {
      this.recorder?.putOperation(op);
    } catch (e) {
      // the record is for later listing: a full disk does not stop the operation
      this.log(`recording operation ${op.id}: ${(e as Error).message}`);
    }
  }

  /**
   * Start `work`; it reports through `progress` and resolves with the result. `cancellable: false` (builds): a
   * DELETE is refused.
   */
  start(
    kind: OperationKind,
    target: string,
    work: (signal: AbortSignal, progress: Progress) => Promise<Record<string, unknown>>,
    opts: { cancellable?: boolean } = {},
  ): Operation {
    this.forgetOld();
    const op: Operation = {
      id: randomBytes(16).toString('hex'),
      kind,
      target,
      state: 'running',
      created: new Date().toISOString(),
      finished: null,
      progress: { current: 0, total: 0, layers: [], phase: null, log: [] },
      result: null,
      error: null,
    };
    const entry = {
      op,
      ac: new AbortController(),
      listeners: new Set<Listener>(),
      at: Date.now(),
      cancellable: opts.cancellable !== false,
    };
    this.ops.set(op.id, entry);
    this.record(op);
    let recorded = Date.now();
    const notify = (now = false) => {
      for (const l of entry.listeners) l(op);
      if (now || Date.now() - recorded >= RECORD_MS) {
        recorded = Date.now();
        this.record(op);
      }
    };
    const progress: Progress = {
      layer: (l) => {
        const i = op.progress.layers.findIndex((x) => x.digest === l.digest);
        if (i >= 0) op.progress.layers[i] = l;
        else op.progress.layers.push(l);
        op.progress.current = op.progress.layers.reduce((a, x) => a + x.current, 0);
        op.progress.total = op.progress.layers.reduce((a, x) => a + x.total, 0);
        notify();
      },
      phase: (current, total, what) => {
        op.progress.current = current;
        op.progress.total = total;
        op.progress.phase = what;
        notify(true);
      },
      line: (text) => {
        op.progress.log.push(text);
        if (op.progress.log.length > LOG_LINES) op.progress.log.splice(0, op.progress.log.length - LOG_LINES);
        notify();
      },
    };
    const done = (async () => work(entry.ac.signal, progress))()
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
        notify(true);
        entry.listeners.clear();
      });
    this.running.add(done);
    void done.finally(() => this.running.delete(done));
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

  /** Whether an operation of this id may be cancelled (one that runs, of a kind that can stop half-way). */
  cancellable(id: string): boolean {
    const e = this.ops.get(id);
    return e?.op.state === 'running' && e.cancellable;
  }

  cancel(id: string): boolean {
    const e = this.ops.get(id);
    if (e?.op.state !== 'running' || !e.cancellable) return false;
    e.ac.abort();
    return true;
  }

  /**
   * The daemon stops: what can be cancelled is; what cannot (a build) is recorded as it stands, and a daemon that
   * starts later reports it interrupted.
   */
  cancelAll(): void {
    for (const e of this.ops.values()) if (e.op.state === 'running' && e.cancellable) e.ac.abort();
  }

  /** Resolves when every running operation has ended. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.running]);
  }

  private forgetOld(): void {
    const old = Date.now() - 3600_000;
    const done = [...this.ops.values()].filter((e) => e.op.state !== 'running');
    for (const e of done) if (e.at < old || this.ops.size > 200) this.ops.delete(e.op.id);
  }
}
