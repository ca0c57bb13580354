/**
 * The daemon's supervision of a root's instances: while `hull daemon` runs, it holds the root's lease
 * (./lease.ts) and applies restart policies and runs healthchecks in-process, instead of conmon's exit command
 * (`hull system instance-exited`) and the detached `hull system health-monitor`. Those keep working when no
 * daemon runs: each checks the lease and leaves the work to a live daemon, so nothing is applied twice.
 *
 * - Every second (and at once for runs the daemon starts itself) it sweeps the store: each running instance with
 *   a healthcheck gets a probe loop; each with a restart policy gets an exit watch. A daemon that starts resumes
 *   the health monitoring of the instances already running.
 * - An exit whose policy asks for a restart (seen by the watch, by a verb of the daemon's, or recorded by conmon's
 *   exit command while the lease was held) is restarted once, after docker's back-off.
 * - On stop it lets go of the lease and hands the healthchecks back to detached monitors; pending restarts are
 *   applied first.
 */
import type { Engine, SupervisorHooks } from './engine.js';
import type { InstanceRecord } from './store.js';
import { acquireDaemonLease } from './lease.js';
import { ConflictError } from '../common/errors.js';
import { monitorHealth, spawnHealthMonitor } from './lifecycle/health.js';
import { handleExit, restartDelay, restartNow, shouldRestart } from './lifecycle/exit.js';

/** How often the store is swept for runs begun by other processes (the CLI on the same root). */
const SWEEP_MS = 1000;

interface Watch {
  startedAt: number | null;
  ac: AbortController;
  done: Promise<void>;
}

const live = (r: InstanceRecord) => r.state === 'running' || r.state === 'paused';

export class Supervisor implements SupervisorHooks {
  private readonly health = new Map<string, Watch>();
  private readonly exits = new Map<string, Watch>();
  /** exits whose restart is scheduled or done, by `id@finishedAt` */
  private readonly handled = new Set<string>();
  /** restarts waiting for their back-off */
  private readonly pending = new Map<string, { timer: NodeJS.Timeout; run: () => Promise<void> }>();
  /** restarts that are running */
  private readonly restarting = new Set<Promise<void>>();
  /** failed restarts in a row, per instance (their back-off grows) */
  private readonly failures = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private standby: NodeJS.Timeout | undefined;
  private release: (() => void) | undefined;
  private since = 0;
  private stopped = false;

  constructor(
    private readonly engine: Engine,
    private readonly log: (line: string) => void = () => undefined,
  ) {}

  /**
   * Take the root's lease and begin: resume monitoring what runs, restart what a policy wants restarted. When
   * another daemon holds the lease (two daemons on one root, on two sockets), this one serves without supervising
   * and takes over when that one stops.
   */
  start(): void {
    if (this.tryLease()) return;
    this.log(
      `another hull daemon supervises the instances of ${this.engine.root} (restart policies, healthchecks); this one takes over when it stops`,
    );
    this.timer = setInterval(() => {
      if (this.tryLease()) clearInterval(this.standby);
    }, SWEEP_MS);
    this.standby = this.timer;
    this.timer.unref();
  }

  private tryLease(): boolean {
    if (this.stopped) return false;
    try {
      this.release = acquireDaemonLease(this.engine.root);
    } catch (e) {
      if (e instanceof ConflictError) return false;
      throw e;
    }
    this.engine.supervisor = this;
    this.since = 0;
    this.sweep();
    this.since = Date.now();
    this.timer = setInterval(() => this.sweep(), SWEEP_MS);
    this.timer.unref();
    return true;
  }

  /** How many health loops and exit watches run (for tests and /info-like reports). */
  get watched(): { health: number; exits: number } {
    return { health: this.health.size, exits: this.exits.size };
  }

  started(rec: InstanceRecord): void {
    const cur = this.engine.store.get(rec.id);
    if (cur) this.watch(cur);
  }

  exited(rec: InstanceRecord): void {
    if (this.stopped || !shouldRestart(rec)) return;
    const key = `${rec.id}@${rec.finishedAt}`;
    if (this.handled.has(key)) return;
    this.handled.add(key);
    const fails = this.failures.get(rec.id) ?? 0;
    const delay = fails ? Math.min(100 * 2 ** Math.min(fails, 10), 60_000) : restartDelay(rec);
    const run = async () => {
      this.pending.delete(rec.id);
      const ok = await restartNow(this.engine, rec).catch(() => false);
      if (ok) this.failures.delete(rec.id);
      else {
        this.failures.set(rec.id, fails + 1);
        this.log(`restarting ${rec.name} (restart policy ${rec.config.restart.name}) failed; trying again`);
      }
      const cur = this.engine.store.get(rec.id);
      if (cur && live(cur)) this.watch(cur);
    };
    const timer = setTimeout(() => this.track(run()), delay);
    this.pending.set(rec.id, { timer, run });
  }

  private track(p: Promise<void>): void {
    this.restarting.add(p);
    void p.finally(() => this.restarting.delete(p));
  }

  /** One sweep of the store. At start (since = 0) every exit a policy would restart counts, later only new ones. */
  private sweep(): void {
    if (this.stopped) return;
    let records: InstanceRecord[];
    try {
      records = this.engine.store.list();
    } catch (e) {
      this.log(`supervision: reading the store failed: ${(e as Error).message}`);
      return;
    }
    const ids = new Set(records.map((r) => r.id));
    for (const r of records) {
      if (live(r)) this.watch(r);
      else if (r.state === 'exited' && (r.finishedAt ?? 0) >= this.since && !this.pending.has(r.id)) this.exited(r);
    }
    // instances that are gone
    for (const [id, w] of [...this.health, ...this.exits]) if (!ids.has(id)) w.ac.abort();
  }

  private watch(rec: InstanceRecord): void {
    if (this.stopped || !live(rec)) return;
    const h = this.health.get(rec.id);
    if (rec.config.healthcheck && (!h || h.startedAt !== rec.startedAt)) {
      h?.ac.abort();
      const ac = new AbortController();
      const w: Watch = { startedAt: rec.startedAt, ac, done: Promise.resolve() };
      w.done = monitorHealth(this.engine, rec.id, { signal: ac.signal })
        .catch((e: unknown) => this.log(`healthcheck of ${rec.name}: ${(e as Error).message}`))
        .finally(() => {
          if (this.health.get(rec.id) === w) this.health.delete(rec.id);
        });
      this.health.set(rec.id, w);
    }
    const x = this.exits.get(rec.id);
    if (rec.config.restart.name !== 'no' && (!x || x.startedAt !== rec.startedAt)) {
      x?.ac.abort();
      const ac = new AbortController();
      const w: Watch = { startedAt: rec.startedAt, ac, done: Promise.resolve() };
      w.done = this.watchExit(rec, ac.signal)
        .catch((e: unknown) => this.log(`watching ${rec.name}: ${(e as Error).message}`))
        .finally(() => {
          if (this.exits.get(rec.id) === w) this.exits.delete(rec.id);
        });
      this.exits.set(rec.id, w);
    }
  }

  /** Wait for the run's exit; record it (unless conmon's exit command did) and apply the restart policy. */
  private async watchExit(rec: InstanceRecord, signal: AbortSignal): Promise<void> {
    const driver = this.engine.driver(rec.kind);
    await driver.waitExit(this.engine.context(rec), signal);
    if (signal.aborted || this.stopped) return;
    const cur = this.engine.store.get(rec.id);
    if (cur && live(cur) && cur.startedAt === rec.startedAt) {
      const info = this.engine.observedExit(cur);
      if (info) await handleExit(this.engine, cur, info);
    }
    const now = this.engine.store.get(rec.id);
    if (now?.state === 'exited' && now.startedAt === rec.startedAt) this.exited(now);
  }

  /**
   * Stop: pending restarts are applied now, loops end, the lease is let go, and running instances with a
   * healthcheck get a detached monitor again (the CLI's mechanism).
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.standby);
    clearInterval(this.timer);
    // never supervised (the lease was another daemon's): nothing to hand back
    if (!this.release) return;
    for (const { timer, run } of this.pending.values()) {
      clearTimeout(timer);
      this.track(run());
    }
    this.pending.clear();
    for (const w of [...this.health.values(), ...this.exits.values()]) w.ac.abort();
    await Promise.allSettled([...this.restarting]);
    await Promise.allSettled([...this.health.values(), ...this.exits.values()].map((w) => w.done));
    if (this.engine.supervisor === this) this.engine.supervisor = undefined;
    this.release?.();
    for (const r of this.engine.store.list()) if (live(r) && r.config.healthcheck) spawnHealthMonitor(this.engine, r);
  }
}
