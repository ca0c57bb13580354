/**
 * When hull.db is lost, emptied or damaged. The store is the only list of instances, but an instance is more
 * than its row: a directory (<root>/containers/<id>), a supervisor (conmon, hull's VM monitor and QEMU), mounts,
 * a network namespace, CNI attachments, runtime state, cgroups. A store that forgot them would let hull act as
 * if the root were empty: `ps` and `system prune` would not see them, image garbage collection could delete
 * their images, and their names could be taken again.
 *
 * So, before the engine is used:
 *  - a missing or empty database on a root that holds any of the above is refused (checkBeforeOpen), before
 *    SQLite makes a new, empty one;
 *  - a database that does not record an instance directory is refused too (checkAfterOpen: one readdir and
 *    one query per command);
 *  - a damaged database is refused by the store itself (store.ts: StateCorruptError).
 * Each refusal is one line naming what was found and `hull system recover`, which:
 *  - moves a damaged (or empty) database aside as hull.db.corrupt-<time> (setAsideDatabase);
 *  - rebuilds each unknown instance from its saved record (instance-file.ts) and what its supervisor and exit
 *    file say: running (or paused, or created) with its supervisor's pid when that still runs, exited with the
 *    code of its exit file otherwise (its runtime state, mounts and networks then released, as at any exit);
 *  - cleans up what cannot be rebuilt (no saved record, no directory left): the driver's own tear-down, then
 *    whatever mount, network namespace or attachment of that id is still there.
 * What is a driver's (its supervisors and their look from outside, its runtime state, its files, its cgroups)
 * only the driver knows: the engine asks each driver of the registry through InstanceDriver.recovery and
 * composes the answers with what is its own (instance directories, mounts, namespaces, network attachments).
 */
import { existsSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { StateCorruptError, StateLostError } from '../common/errors.js';
import type {
  DriverRemains,
  FoundProcess,
  InstanceDriver,
  InstanceState,
  ExitInfo,
  RecoveryScope,
} from '../common/instance.js';
import { mountsUnder, readMountInfo, unmountAll } from '../host/mount.js';
import { processStartTime } from '../host/proc.js';
import { DRIVER_FACTORIES } from './drivers.js';
import type { Engine } from './engine.js';
import { readInstanceFile, type SavedInstance } from './instance-file.js';
import { detachInstance, netnsPath, usesNetworks } from './networking.js';
import { removeInstance } from './lifecycle/remove.js';
import { monitorRun } from './lifecycle/health.js';
import { removeOrphanRootDisks } from './vm-disks.js';
import { DATABASE_FILE, StateStore, databaseCondition, newInstanceRecord, recoverCommand } from './store.js';
import { rootPaths } from '../common/paths.js';

const ID = /^[0-9a-f]{64}$/;

// ----- what is on the host -----

/** What is left of one instance on the host: the engine's own findings and what each driver found of it. */
interface Remains {
  dir: boolean;
  mounts: string[];
  netns: boolean;
  attachments: boolean;
  /** what each driver that knows recovery (InstanceDriver.recovery) found of it */
  drivers: Map<InstanceDriver, DriverRemains>;
}

function entries(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => ID.test(n));
  } catch {
    return [];
  }
}

/** Where the root's instances live, as the drivers' recovery sees it (engine.instanceDir(id) is <instancesDir>/<id>). */
function scopeOf(root: string): RecoveryScope {
  return { root, instancesDir: rootPaths(root).containers };
}

/** The processes every driver found of an instance. */
function processesOf(r: Remains): FoundProcess[] {
  return [...r.drivers.values()].flatMap((d) => d.processes);
}

/**
 * Everything of the root's instances on the host, by instance id: instance directories, mounts, network
 * namespaces and attachments (the engine's), and what each driver finds of its own (supervisors, runtime
 * state, files). Drivers skip their scan of /proc (tens of ms on a busy host) for a root that never had an
 * instance: <root>/containers is made with the first one and stays, and every supervisor's argv names a
 * directory in it.
 */
function findRemains(root: string, drivers: readonly InstanceDriver[]): Map<string, Remains> {
  const all = new Map<string, Remains>();
  const of = (id: string): Remains => {
    let r = all.get(id);
    if (!r) all.set(id, (r = { dir: false, mounts: [], netns: false, attachments: false, drivers: new Map() }));
    return r;
  };
  const scope = scopeOf(root);
  for (const id of entries(scope.instancesDir)) of(id).dir = true;
  for (const d of drivers) for (const found of d.recovery?.findRemains(scope) ?? []) of(found.id).drivers.set(d, found);
  const under = new RegExp(`^${escapeRe(resolve(root))}/(?:containers|netns)/([0-9a-f]{64})(?:/|$)`);
  for (const m of readMountInfo()) {
    const id = under.exec(m.mountPoint)?.[1];
    if (id) of(id).mounts.push(m.mountPoint);
  }
  for (const id of entries(rootPaths(root).netns)) of(id).netns = true;
  for (const id of entries(rootPaths(root).networkAttachments)) of(id).attachments = true;
  return all;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** "2 instance directories, 1 supervisor process (conmon), 3 mounts" for the ids given. */
function describe(found: Map<string, Remains>): string {
  const rs = [...found.values()];
  const n = (k: number, one: string, many: string): string => `${k} ${k === 1 ? one : many}`;
  const parts: string[] = [];
  const dirs = rs.filter((r) => r.dir).length;
  if (dirs) parts.push(n(dirs, 'instance directory', 'instance directories'));
  const sups = rs.flatMap(processesOf);
  if (sups.length)
    parts.push(
      `${n(sups.length, 'supervisor process', 'supervisor processes')} (${[...new Set(sups.map((s) => s.program))].sort().join(', ')})`,
    );
  const mounts = rs.reduce((k, r) => k + r.mounts.length, 0);
  if (mounts) parts.push(n(mounts, 'mount', 'mounts'));
  const netns = rs.filter((r) => r.netns || r.attachments).length;
  if (netns) parts.push(n(netns, 'network attachment', 'network attachments'));
  const state = rs.filter((r) => [...r.drivers.values()].some((d) => d.state.length > 0)).length;
  if (state) parts.push(n(state, 'runtime state', 'runtime states'));
  const ids = [...found.keys()].map((id) => id.slice(0, 12));
  return `${parts.join(', ')} of ${n(ids.length, 'instance', 'instances')} (${ids.slice(0, 4).join(', ')}${ids.length > 4 ? ', …' : ''})`;
}

// ----- the checks before a command uses the store -----

/**
 * Before the store is opened: a missing or empty database is only right for a root without instances. Refuses
 * (before SQLite makes a new, empty database) when anything of an instance is on the host.
 */
export function checkBeforeOpen(root: string): void {
  const cond = databaseCondition(root);
  if (cond === 'present') return;
  // no engine yet (it would open the store): the registry's drivers, made for this look only
  const found = findRemains(
    root,
    DRIVER_FACTORIES.map((f) => f.create()),
  );
  if (found.size === 0) return;
  throw new StateLostError(
    `the state database ${join(root, DATABASE_FILE)} is ${cond}, but the root holds ${describe(found)}; run "${recoverCommand(root)}" to rebuild their records (or clean up what cannot be rebuilt)`,
  );
}

/**
 * After the store is opened: every instance directory must have its record. The directory is listed before
 * the store is read: create records an instance before it makes the directory, and remove deletes the
 * directory before the record, so a concurrent create or remove is never taken for a lost record.
 */
export function checkAfterOpen(engine: Engine): void {
  const dirs = entries(rootPaths(engine.root).containers);
  if (dirs.length === 0) return;
  const known = engine.store.ids();
  const unknown = dirs.filter((id) => !known.has(id) && existsSync(engine.instanceDir(id)));
  if (unknown.length === 0) return;
  const found = findRemains(engine.root, engine.allDrivers());
  for (const id of [...found.keys()]) if (!unknown.includes(id)) found.delete(id);
  throw new StateLostError(
    `the state database ${join(engine.root, DATABASE_FILE)} has no record of ${describe(found)} found under ${engine.root}; run "${recoverCommand(engine.root)}" to rebuild their records (or clean up what cannot be rebuilt)`,
  );
}

// ----- hull system recover -----

/**
 * Before the engine opens the store: a database SQLite cannot read (or an empty one, or the -wal/-shm of one
 * that is gone) is moved aside as hull.db.corrupt-<time>[-wal|-shm], so that a new one can be made. Returns
 * the paths it moved the files to.
 */
export function setAsideDatabase(root: string): string[] {
  const cond = databaseCondition(root);
  if (cond === 'present') {
    try {
      new StateStore(root).close();
      return [];
    } catch (e) {
      if (!(e instanceof StateCorruptError)) throw e;
    }
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const moved: string[] = [];
  for (const suffix of ['', '-wal', '-shm']) {
    const from = join(root, DATABASE_FILE + suffix);
    if (!existsSync(from)) continue;
    if (suffix === '' && cond === 'empty') {
      rmSync(from, { force: true }); // nothing in it to keep
      continue;
    }
    const to = join(root, `${DATABASE_FILE}.corrupt-${stamp}${suffix}`);
    renameSync(from, to);
    moved.push(to);
  }
  return moved;
}

export interface RecoveredInstance {
  id: string;
  name: string;
  state: InstanceState;
  exitCode: number | null;
  /** anything the user should know (a new name, an image that is gone, networks that are gone) */
  notes: string[];
}

export interface RemovedInstance {
  id: string;
  /** the saved name, when there was one */
  name?: string;
  why: string;
  /** what could not be cleaned up */
  problems: string[];
}

export interface RecoverReport {
  recovered: RecoveredInstance[];
  removed: RemovedInstance[];
  /** instances whose rebuild failed for another reason: left as they are, for another try */
  failed: { id: string; name: string; error: string }[];
}

/**
 * Rebuild the records of every instance the store does not know, or clean up what cannot be rebuilt. The
 * engine must have been opened without the checks above (they would refuse).
 */
export async function recoverInstances(engine: Engine): Promise<RecoverReport> {
  const report: RecoverReport = { recovered: [], removed: [], failed: [] };
  const known = engine.store.ids();
  for (const [id, found] of findRemains(engine.root, engine.allDrivers())) {
    if (known.has(id)) continue;
    let why: string;
    let saved: SavedInstance | undefined;
    if (found.dir) {
      const s = readInstanceFile(engine.instanceDir(id), id);
      if (typeof s === 'string') why = s;
      else {
        saved = s;
        try {
          const r = await rebuild(engine, s, found);
          if ('why' in r) report.removed.push(r);
          else report.recovered.push(r);
        } catch (e) {
          // its record is fine: nothing of it is torn down for an error that may pass (recorded or not)
          report.failed.push({ id, name: s.name, error: (e as Error).message });
        }
        continue;
      }
    } else {
      why = 'its instance directory is gone';
    }
    report.removed.push({
      id,
      ...(saved ? { name: saved.name } : {}),
      why,
      problems: await cleanUp(engine, id, found, saved ? engine.driver(saved.kind) : undefined),
    });
  }
  return report;
}

/** When a process started (ms since the epoch), from its start time in clock ticks after boot. */
function processStartedAt(pid: number): number | null {
  const ticks = Number(processStartTime(pid));
  if (!Number.isFinite(ticks) || ticks <= 0) return null;
  try {
    const btime = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1]);
    // USER_HZ is 100 on every Linux architecture hull runs on
    return Number.isFinite(btime) ? Math.round((btime + ticks / 100) * 1000) : null;
  } catch {
    return null;
  }
}

async function rebuild(engine: Engine, s: SavedInstance, found: Remains): Promise<RecoveredInstance | RemovedInstance> {
  const notes: string[] = [];
  let name = s.name;
  if (engine.store.list().some((r) => r.name === name)) {
    name = `${s.name}-${s.id.slice(0, 12)}`;
    notes.push(`renamed from ${s.name}, which another instance has now`);
  }
  const rec = newInstanceRecord({
    id: s.id,
    name,
    kind: s.kind,
    image: s.image,
    imageId: s.imageId,
    config: s.config,
    createdAt: s.createdAt,
  });
  const driver = engine.driver(rec.kind);
  const ctx = engine.context(rec);
  const supervisor = processesOf(found).find((x) => x.main && driver.supervisorAlive(ctx, x.pid));
  let exit: ExitInfo | null = driver.exitInfo(ctx);
  let live: { state: 'running' | 'paused' | 'created'; pid: number } | null = null;
  if (!exit && supervisor) {
    const st = await driver.status(ctx).catch(() => ({ status: 'unknown' as const, pid: 0 }));
    if (st.status === 'running' || st.status === 'paused' || st.status === 'created')
      live = { state: st.status, pid: st.pid };
    // otherwise it is exiting: its supervisor writes the exit file next
    else exit = await driver.waitExit(ctx, AbortSignal.timeout(5000)).catch(() => null);
  }
  if (live) {
    Object.assign(rec, { state: live.state, pid: live.pid, supervisorPid: supervisor!.pid });
    if (live.state !== 'created')
      rec.startedAt = processStartedAt(live.pid) ?? processStartedAt(supervisor!.pid) ?? Date.now();
  } else {
    exit ??= {
      exitCode: 255,
      finishedAt: Date.now(),
      reason: `its supervisor (${driver.supervisorName}) was gone when hull recovered its record`,
    };
    Object.assign(rec, {
      state: 'exited',
      exitCode: exit.exitCode,
      finishedAt: exit.finishedAt,
      exitReason: exit.reason ?? null,
      oomKilled: exit.oomKilled === true,
    });
  }
  await engine.images.resolve(rec.imageId).catch(() => {
    notes.push(`its image ${rec.imageId.replace(/^sha256:/, '').slice(0, 12)} is gone: it cannot be started again`);
  });
  engine.store.insert(rec);
  engine.event(rec, 'recover', { state: rec.state });
  if (rec.state === 'exited') {
    // what every exit releases (lifecycle/exit.ts): runtime state and mounts, then the networks
    await driver.cleanupAfterExit(ctx).catch(() => undefined);
    await detachInstance(engine, rec).catch(() => undefined);
    if (rec.config.autoRemove) {
      await removeInstance(engine, rec, { force: true });
      return { id: rec.id, name: rec.name, why: 'it had exited and was created with --rm', problems: [] };
    }
  } else {
    if (usesNetworks(rec) && engine.networks.attachments(rec.id).length === 0)
      notes.push('its network attachments are gone: it has no network until it is restarted');
    // a monitor of the old record stops at its next round (the run it watched is no longer in the store): the
    // rebuilt run gets its own (the daemon's, or a detached one)
    if (rec.state !== 'created' && rec.config.healthcheck) monitorRun(engine, rec);
  }
  return { id: rec.id, name: rec.name, state: rec.state, exitCode: rec.exitCode, notes };
}

/**
 * Tear down what is left of an instance that cannot be rebuilt: first the tear-down of its driver (runtime
 * state, supervisors, cgroups, files), then whatever of it is still on the host (mounts, network namespace and
 * attachments, the directory). Its driver is the one its saved record names, else every driver that found
 * something of it; when none did (a bare directory, a stray mount), every driver tidies up what it may have
 * left. Returns what stayed.
 */
async function cleanUp(engine: Engine, id: string, found: Remains, saved?: InstanceDriver): Promise<string[]> {
  const problems: string[] = [];
  const dir = engine.instanceDir(id);
  const scope = scopeOf(engine.root);
  const claimed = [...found.drivers]
    .filter(([, r]) => r.files || r.processes.length > 0 || r.state.length > 0)
    .map(([d]) => d);
  const drivers = saved ? [saved] : claimed.length > 0 ? claimed : engine.allDrivers();
  for (const d of drivers) {
    if (d.recovery)
      problems.push(...(await d.recovery.tearDown(scope, id, found.drivers.get(d)).catch((e: Error) => [e.message])));
  }
  await unmountAll(dir).catch((e: Error) => problems.push(e.message));
  await engine.networks.teardown(id, netnsPath(engine, id)).catch((e: Error) => problems.push(e.message));
  if (mountsUnder(dir).length === 0) rmSync(dir, { recursive: true, force: true });
  else problems.push(`mounts remain under ${dir}`);
  // a VM's root disk in a pool (vm-disks.ts) is named by its id
  problems.push(...removeOrphanRootDisks(engine, id));
  return [...new Set(problems)];
}
