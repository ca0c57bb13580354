import { existsSync, readFileSync } from 'node:fs';
import type { ExitInfo, InstanceContext, InstanceDriver, InstanceKind } from '../common/instance.js';
import { HostSupportError } from '../common/errors.js';
import { ImageStore } from '../image/store.js';
import { DRIVER_FACTORIES } from './drivers.js';
import { NetworkManager } from '../network/manager.js';
import { StateStore, type InstanceRecord } from './store.js';
import { hullEnv } from '../common/env.js';
import { SpaceReserve } from '../host/reserve.js';
import { isNoSpace, isNoSpaceError } from '../host/fserror.js';
import { rootPaths } from '../common/paths.js';

export interface EngineOptions {
  /** hull's root dir: /var/lib/hull unless --root / HULL_ROOT say otherwise */
  root: string;
  /** argv that runs this hull (node + entry script); conmon runs it when an instance exits */
  self: string[];
  /**
   * Whether this process may give the root's space reserve back to a full file system (host/reserve.ts): true
   * for commands that list, stop and remove things, so that a full disk can be freed with hull itself; false
   * (the default) for commands that add things.
   */
  mayUseReserve?: boolean;
  /** drivers to use instead of the built-in ones, by kind (tests put a fake driver here) */
  drivers?: Partial<Record<InstanceKind, InstanceDriver>>;
}

export const DEFAULT_ROOT = '/var/lib/hull';

/**
 * The one place that composes images, drivers and the state store. Lifecycle verbs live one per file in
 * ./lifecycle (youki's habit); they take the engine and do their state guards through the store's
 * compare-and-set transitions. The engine picks a driver by the instance's kind and never branches on it
 * otherwise.
 */
/**
 * What a supervising daemon (./supervisor.ts) wants to hear from the lifecycle verbs it runs in-process: a run
 * that began (to watch its health and exit), an exit whose restart policy asks for a restart (to apply it).
 */
export interface SupervisorHooks {
  started(rec: InstanceRecord): void;
  exited(rec: InstanceRecord): void;
}

export class Engine {
  /** set while this process is the daemon that supervises the root's instances */
  supervisor: SupervisorHooks | undefined;
  readonly root: string;
  readonly self: string[];
  readonly store: StateStore;
  readonly images: ImageStore;
  readonly reserve: SpaceReserve;
  private mayUseReserve: boolean;
  private readonly drivers = new Map<InstanceKind, InstanceDriver>();
  private networkManager: NetworkManager | undefined;

  constructor(opts: EngineOptions) {
    this.root = opts.root;
    this.self = opts.self;
    this.reserve = new SpaceReserve(opts.root);
    this.mayUseReserve = opts.mayUseReserve ?? false;
    // On a full disk, free the reserve before SQLite opens: its -shm file is mapped into memory, and a page of it
    // that cannot be allocated is a SIGBUS, not an error (see host/reserve.ts).
    if (this.mayUseReserve) this.reserve.releaseIfFull();
    this.store = new StateStore(opts.root);
    this.store.onFull = () => this.mayUseReserve && this.reserve.release();
    this.images = new ImageStore(opts.root);
    if (!this.reserve.present) this.reserve.replenish();
    for (const [kind, d] of Object.entries(opts.drivers ?? {})) this.drivers.set(kind as InstanceKind, d);
  }

  /** The network driver (definitions, CNI attachments, DNS); made on first use. */
  get networks(): NetworkManager {
    this.networkManager ??= new NetworkManager(this.root);
    return this.networkManager;
  }

  /**
   * From now on this process may use the space reserve: it is undoing what it made (a failed create or start, a
   * build's step containers), which frees space, and must not be stopped half-way by a full disk.
   */
  undoing(): void {
    this.mayUseReserve = true;
  }

  close(): void {
    this.store.close();
  }

  /** The driver of a kind (made on first use), from the registry in ./drivers.ts. */
  driver(kind: InstanceKind): InstanceDriver {
    const known = this.drivers.get(kind);
    if (known) return known;
    const factory = DRIVER_FACTORIES.find((f) => f.kind === kind);
    if (!factory) throw new HostSupportError(`instances of kind "${kind}" are not supported by this build of hull`);
    const d = factory.create();
    this.drivers.set(kind, d);
    return d;
  }

  /** Every kind this build has, the default first. */
  kinds(): InstanceKind[] {
    return DRIVER_FACTORIES.map((f) => f.kind);
  }

  /** Every driver of this build (for what the engine asks of all of them alike, e.g. cache pruning). */
  allDrivers(): InstanceDriver[] {
    return this.kinds().map((k) => this.driver(k));
  }

  instanceDir(id: string): string {
    return rootPaths(this.root).instanceDir(id);
  }

  /**
   * The driver's view of an instance. Layers are filled in only where a root filesystem is assembled.
   * `watcherPid` names a hull process that waits for the exit in the foreground and handles it itself: the
   * supervisor's exit command then runs hull only if that process is gone (saving a Node.js start per run).
   */
  context(rec: InstanceRecord, layers: string[] = [], watcherPid?: number): InstanceContext {
    const exitCommand = [...this.self, '--root', this.root, 'system', 'instance-exited', rec.id];
    return {
      id: rec.id,
      name: rec.name,
      root: this.root,
      dir: this.instanceDir(rec.id),
      config: rec.config,
      layers,
      exitCommand:
        watcherPid === undefined
          ? exitCommand
          : [
              '/bin/sh',
              '-c',
              'kill -0 "$1" 2>/dev/null && exit 0; shift; exec "$@"',
              'hull-exit',
              String(watcherPid),
              ...exitCommand,
            ],
    };
  }

  async contextWithLayers(rec: InstanceRecord): Promise<InstanceContext> {
    const image = await this.images.resolve(rec.imageId);
    return this.context(rec, await this.images.layerDirs(image));
  }

  /**
   * Record an event. The event log is a record of what happened, not part of it: on a full disk the event is
   * dropped rather than failing a verb whose effect already took place (a run whose instance runs, a stop whose
   * instance stopped).
   */
  event(
    rec: Pick<InstanceRecord, 'id' | 'name' | 'image' | 'kind'>,
    action: string,
    attrs: Record<string, string> = {},
  ): void {
    try {
      this.store.addEvent(rec.kind, action, rec.id, rec.name, { image: rec.image, name: rec.name, ...attrs });
    } catch (e) {
      if (!isNoSpace(e, this.root) && !isNoSpaceError(e)) throw e;
    }
  }

  /** Whether an instance's supervisor still runs (the driver knows what its supervisor looks like). */
  supervisorAlive(rec: InstanceRecord): boolean {
    if (rec.supervisorPid <= 0) return false;
    return this.driver(rec.kind).supervisorAlive(this.context(rec), rec.supervisorPid);
  }

  /**
   * What the instance's process left behind, if it has exited: the supervisor's exit record, or a
   * synthesized one when the supervisor itself died without writing it.
   */
  observedExit(rec: InstanceRecord): ExitInfo | null {
    if (rec.state !== 'running' && rec.state !== 'paused') return null;
    const ctx = this.context(rec);
    const info = this.driver(rec.kind).exitInfo(ctx);
    if (info) return info;
    if (rec.supervisorPid > 0 && !this.supervisorAlive(rec)) {
      // Check once more: the supervisor writes the exit file just before it exits.
      const again = this.driver(rec.kind).exitInfo(ctx);
      if (again) return again;
      return {
        exitCode: 255,
        finishedAt: Date.now(),
        reason: `its supervisor (${this.driver(rec.kind).supervisorName}) exited unexpectedly`,
      };
    }
    return null;
  }

  /** The host's boot id: a change means the host restarted and runtime state is gone. */
  static bootId(): string {
    // HULL_BOOT_ID lets tests simulate a host restart
    const hook = hullEnv('HULL_BOOT_ID');
    if (hook) return hook;
    try {
      return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      return 'unknown';
    }
  }

  hasState(): boolean {
    return existsSync(rootPaths(this.root).db);
  }
}
