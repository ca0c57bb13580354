import Database from 'better-sqlite3';
import { closeSync, fstatSync, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import { ConflictError, NoSuchInstanceError, NotFoundError, StateCorruptError, StateError } from '../common/errors.js';
import type { InstanceConfig, InstanceKind, InstanceState } from '../common/instance.js';
import { migrateConfig } from './migrate.js';
import { describeNoSpace, isNoSpace } from '../host/fserror.js';
import { rootPaths } from '../common/paths.js';
import type { HealthState } from './health.js';

/**
 * The engine's state store: one SQLite database per hull root, shared by every hull process
 * (CLI invocations, conmon exit commands). WAL mode plus a busy timeout gives real locking across
 * processes; every state change is a compare-and-set in one transaction, so two processes can never
 * both move an instance out of the same state.
 */

export interface InstanceRecord {
  id: string;
  name: string;
  kind: InstanceKind;
  state: InstanceState;
  image: string;
  imageId: string;
  config: InstanceConfig;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  exitCode: number | null;
  exitReason: string | null;
  /** the kernel's OOM killer killed a process of it during its last run (docker's State.OOMKilled) */
  oomKilled: boolean;
  pid: number;
  supervisorPid: number;
  restartCount: number;
  /** set when the user stopped it (docker's "manually stopped": restart policies do not apply) */
  stoppedByUser: boolean;
  /** the healthcheck's state (docker's State.Health); null without a healthcheck or before the first start */
  health?: HealthState | null;
}

/** The record of an instance just made (or rebuilt): created, never started, no exit, no processes. */
export function newInstanceRecord(
  base: Pick<InstanceRecord, 'id' | 'name' | 'kind' | 'image' | 'imageId' | 'config' | 'createdAt'>,
): InstanceRecord {
  return {
    ...base,
    state: 'created',
    startedAt: null,
    finishedAt: null,
    exitCode: null,
    exitReason: null,
    oomKilled: false,
    pid: 0,
    supervisorPid: 0,
    restartCount: 0,
    stoppedByUser: false,
    health: null,
  };
}

export interface EventRecord {
  seq: number;
  time: number;
  type: string;
  action: string;
  id: string;
  name: string;
  attributes: Record<string, string>;
}

interface InstanceRow {
  id: string;
  name: string;
  kind: string;
  state: string;
  image: string;
  image_id: string;
  config: string;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  exit_code: number | null;
  exit_reason: string | null;
  oom_killed: number;
  pid: number;
  supervisor_pid: number;
  restart_count: number;
  stopped_by_user: number;
  health: string | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS instances (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  state TEXT NOT NULL,
  image TEXT NOT NULL,
  image_id TEXT NOT NULL,
  config TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  exit_code INTEGER,
  exit_reason TEXT,
  oom_killed INTEGER NOT NULL DEFAULT 0,
  pid INTEGER NOT NULL DEFAULT 0,
  supervisor_pid INTEGER NOT NULL DEFAULT 0,
  restart_count INTEGER NOT NULL DEFAULT 0,
  stopped_by_user INTEGER NOT NULL DEFAULT 0,
  health TEXT
);
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  time INTEGER NOT NULL,
  type TEXT NOT NULL,
  action TEXT NOT NULL,
  id TEXT NOT NULL,
  name TEXT NOT NULL,
  attributes TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS console_tokens (hash TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS console_sessions (
  hash TEXT PRIMARY KEY,
  csrf_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS operations (
  id TEXT PRIMARY KEY,
  created INTEGER NOT NULL,
  state TEXT NOT NULL,
  data TEXT NOT NULL
);
`;

function fromRow(r: InstanceRow): InstanceRecord {
  return {
    id: r.id,
    name: r.name,
    kind: r.kind as InstanceKind,
    state: r.state as InstanceState,
    image: r.image,
    imageId: r.image_id,
    config: migrateConfig(JSON.parse(r.config)),
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    exitCode: r.exit_code,
    exitReason: r.exit_reason,
    oomKilled: r.oom_killed !== 0,
    pid: r.pid,
    supervisorPid: r.supervisor_pid,
    restartCount: r.restart_count,
    stoppedByUser: r.stopped_by_user !== 0,
    health: r.health ? (JSON.parse(r.health) as HealthState) : null,
  };
}

export type InstancePatch = Partial<
  Pick<
    InstanceRecord,
    | 'startedAt'
    | 'finishedAt'
    | 'exitCode'
    | 'exitReason'
    | 'oomKilled'
    | 'pid'
    | 'supervisorPid'
    | 'restartCount'
    | 'stoppedByUser'
    | 'config'
    | 'health'
  >
>;

const COLUMN: Record<keyof InstancePatch, string> = {
  startedAt: 'started_at',
  finishedAt: 'finished_at',
  exitCode: 'exit_code',
  exitReason: 'exit_reason',
  oomKilled: 'oom_killed',
  pid: 'pid',
  supervisorPid: 'supervisor_pid',
  restartCount: 'restart_count',
  stoppedByUser: 'stopped_by_user',
  config: 'config',
  health: 'health',
};

function encode(key: keyof InstancePatch, v: unknown): unknown {
  if (key === 'config' || key === 'health') return v === null ? null : JSON.stringify(v);
  if (key === 'stoppedByUser' || key === 'oomKilled') return v ? 1 : 0;
  return v;
}

function fileIdentity(path: string): string | null {
  try {
    const st = statSync(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    return null;
  }
}

export class StateStore {
  readonly db: Database.Database;
  /** the database file, <root>/hull.db */
  readonly path: string;
  /**
   * Called when a write fails because the disk is full (SQLITE_FULL, or SQLite's I/O error on extending its WAL
   * or -shm); returns true when it freed space (the root's space reserve), and the write is tried once more.
   */
  onFull: (() => boolean) | undefined;

  constructor(root: string) {
    mkdirSync(root, { recursive: true, mode: 0o711 });
    this.path = rootPaths(root).db;
    this.db = openDatabase(root);
    this.identity = fileIdentity(this.path);
    this.migrate();
  }

  /** the database file this store opened (device and inode) */
  private readonly identity: string | null;

  /**
   * Whether the database file at the path is no longer the one this store opened (deleted, or set aside and made
   * anew by `hull system recover`): a long-lived process (a health monitor) then holds a store no one else sees.
   */
  replaced(): boolean {
    return fileIdentity(this.path) !== this.identity;
  }

  /** Columns added since a root's database was made (SQLite adds a column in place, with its default). */
  private migrate(): void {
    const columns = new Set(
      (this.db.prepare('PRAGMA table_info(instances)').all() as { name: string }[]).map((c) => c.name),
    );
    for (const [name, def] of [
      ['oom_killed', 'INTEGER NOT NULL DEFAULT 0'],
      ['health', 'TEXT'],
    ] as const) {
      if (columns.has(name)) continue;
      try {
        this.db.exec(`ALTER TABLE instances ADD COLUMN ${name} ${def}`);
      } catch (e) {
        // another hull process added it first
        if (!/duplicate column/.test((e as Error).message)) throw e;
      }
    }
  }

  close(): void {
    this.db.close();
  }

  /**
   * Give an instance another name (hull rename), in one transaction with the check that the name is free; a taken
   * name is a ConflictError in docker's words.
   */
  rename(id: string, name: string): void {
    const tx = this.db.transaction(() => {
      const holder = this.db.prepare('SELECT id FROM instances WHERE name = ?').get(name) as { id: string } | undefined;
      if (holder) {
        throw new ConflictError(
          `Conflict. The container name "/${name}" is already in use by container "${holder.id}". You have to remove (or rename) that container to be able to reuse that name.`,
        );
      }
      if (this.db.prepare('UPDATE instances SET name = ? WHERE id = ?').run(name, id).changes === 0)
        throw new NoSuchInstanceError(id.slice(0, 12));
    });
    this.write(() => tx.immediate());
  }

  /** Insert a new instance; a taken name is a ConflictError naming the holder. */
  insert(rec: InstanceRecord): void {
    const tx = this.db.transaction(() => {
      const holder = this.db.prepare('SELECT id FROM instances WHERE name = ?').get(rec.name) as
        | { id: string }
        | undefined;
      if (holder) {
        throw new ConflictError(
          `the name "${rec.name}" is already in use by instance ${holder.id.slice(0, 12)}; remove it (hull rm ${rec.name}) or pick another --name`,
        );
      }
      this.db
        .prepare(`INSERT INTO instances (id, name, kind, state, image, image_id, config, created_at, started_at,
        finished_at, exit_code, exit_reason, oom_killed, pid, supervisor_pid, restart_count, stopped_by_user, health)
        VALUES (@id, @name, @kind, @state, @image, @imageId, @config, @createdAt, @startedAt, @finishedAt, @exitCode,
        @exitReason, @oomKilled, @pid, @supervisorPid, @restartCount, @stoppedByUser, @health)`)
        .run({
          ...rec,
          health: rec.health ? JSON.stringify(rec.health) : null,
          config: JSON.stringify(rec.config),
          stoppedByUser: rec.stoppedByUser ? 1 : 0,
          oomKilled: rec.oomKilled ? 1 : 0,
        });
    });
    this.write(() => tx.immediate());
  }

  /** Run a write; on a full disk, let onFull free space and try once more. */
  private write<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (!isNoSpace(e, this.path)) throw e;
      if (!this.onFull?.()) throw describeNoSpace(e, { path: this.path, action: 'recording in the state store' });
      try {
        return fn();
      } catch (again) {
        throw describeNoSpace(again, { path: this.path, action: 'recording in the state store' });
      }
    }
  }

  get(id: string): InstanceRecord | undefined {
    const r = this.db.prepare('SELECT * FROM instances WHERE id = ?').get(id) as InstanceRow | undefined;
    return r ? fromRow(r) : undefined;
  }

  /** Find by exact name, exact id, or unique id prefix (docker's rules). */
  lookup(ref: string): InstanceRecord {
    const byName = this.db.prepare('SELECT * FROM instances WHERE name = ? OR id = ?').get(ref, ref) as
      | InstanceRow
      | undefined;
    if (byName) return fromRow(byName);
    if (/^[0-9a-f]{1,64}$/.test(ref)) {
      const rows = this.db.prepare("SELECT * FROM instances WHERE id LIKE ? || '%' LIMIT 2").all(ref) as InstanceRow[];
      if (rows.length === 1) return fromRow(rows[0]!);
      if (rows.length > 1)
        throw new ConflictError(`the id prefix "${ref}" matches more than one instance; give more characters`);
    }
    throw new NoSuchInstanceError(ref);
  }

  list(): InstanceRecord[] {
    return (this.db.prepare('SELECT * FROM instances ORDER BY created_at DESC').all() as InstanceRow[]).map(fromRow);
  }

  /**
   * Compare-and-set transition: moves the instance from one of `from` to `to`, applying `patch`,
   * only if its current state is in `from`. Returns the updated record, or throws StateError.
   */
  transition(
    id: string,
    from: readonly InstanceState[],
    to: InstanceState,
    patch: InstancePatch = {},
    what: string = to,
  ): InstanceRecord {
    const tx = this.db.transaction(() => {
      const cur = this.get(id);
      if (!cur) throw new NoSuchInstanceError(id.slice(0, 12));
      if (!from.includes(cur.state)) {
        throw new StateError(`cannot ${what} instance ${cur.name}: it is ${cur.state}`);
      }
      this.applyPatch(id, patch, to);
      return this.get(id)!;
    });
    return this.write(() => tx.immediate());
  }

  /** Like transition, but returns undefined instead of throwing when the state does not match. */
  tryTransition(
    id: string,
    from: readonly InstanceState[],
    to: InstanceState,
    patch: InstancePatch = {},
  ): InstanceRecord | undefined {
    try {
      return this.transition(id, from, to, patch);
    } catch (e) {
      if (e instanceof StateError || e instanceof NotFoundError) return undefined;
      throw e;
    }
  }

  patch(id: string, patch: InstancePatch): void {
    this.write(() => this.db.transaction(() => this.applyPatch(id, patch)).immediate());
  }

  private applyPatch(id: string, patch: InstancePatch, state?: InstanceState): void {
    const sets: string[] = [];
    const vals: unknown[] = [];
    if (state) {
      sets.push('state = ?');
      vals.push(state);
    }
    for (const [k, v] of Object.entries(patch) as [keyof InstancePatch, unknown][]) {
      if (v === undefined) continue;
      sets.push(`${COLUMN[k]} = ?`);
      vals.push(encode(k, v));
    }
    if (sets.length === 0) return;
    this.db.prepare(`UPDATE instances SET ${sets.join(', ')} WHERE id = ?`).run(...vals, id);
  }

  /**
   * Read-modify-write of an instance's health in one transaction (the store's lock): `fn` gets the current record
   * and returns the new health, or null to leave it (the run it served is over). Returns the record as it was
   * and the new health, or null when nothing was written.
   */
  updateHealth(
    id: string,
    fn: (cur: InstanceRecord) => HealthState | null,
  ): { prev: InstanceRecord; next: HealthState } | null {
    const tx = this.db.transaction(() => {
      const cur = this.get(id);
      if (!cur) return null;
      const next = fn(cur);
      if (!next) return null;
      this.applyPatch(id, { health: next });
      return { prev: cur, next };
    });
    return this.write(() => tx.immediate());
  }

  remove(id: string): void {
    this.write(() => this.db.prepare('DELETE FROM instances WHERE id = ?').run(id));
  }

  addEvent(type: string, action: string, id: string, name: string, attributes: Record<string, string> = {}): void {
    this.write(() =>
      this.db
        .prepare('INSERT INTO events (time, type, action, id, name, attributes) VALUES (?, ?, ?, ?, ?, ?)')
        .run(Date.now(), type, action, id, name, JSON.stringify(attributes)),
    );
  }

  events(afterSeq: number, opts: { since?: number; until?: number; limit?: number } = {}): EventRecord[] {
    const rows = this.db
      .prepare(`SELECT * FROM events WHERE seq > ? AND time >= ? AND time <= ? ORDER BY seq LIMIT ?`)
      .all(afterSeq, opts.since ?? 0, opts.until ?? Number.MAX_SAFE_INTEGER, opts.limit ?? 100000) as (Omit<
      EventRecord,
      'attributes'
    > & { attributes: string })[];
    return rows.map((r) => ({ ...r, attributes: JSON.parse(r.attributes) as Record<string, string> }));
  }

  /** Whether an event `action` of instance `id` was recorded at or after `since` (ms since the epoch). */
  hasEvent(id: string, action: string, since: number): boolean {
    return (
      this.db
        .prepare('SELECT 1 FROM events WHERE id = ? AND action = ? AND time >= ? LIMIT 1')
        .get(id, action, since) !== undefined
    );
  }

  lastEventSeq(): number {
    const r = this.db.prepare('SELECT MAX(seq) AS s FROM events').get() as { s: number | null };
    return r.s ?? 0;
  }

  /**
   * Record a long operation of the daemon's (a pull, build or boot; its shape is the API's): inserted or replaced.
   * The newest `keep` are kept.
   */
  putOperation(op: { id: string; state: string; created: string }, keep = 200): void {
    this.write(() => {
      this.db
        .prepare('INSERT OR REPLACE INTO operations (id, created, state, data) VALUES (?, ?, ?, ?)')
        .run(op.id, Date.parse(op.created) || Date.now(), op.state, JSON.stringify(op));
      this.db
        .prepare('DELETE FROM operations WHERE id NOT IN (SELECT id FROM operations ORDER BY created DESC, id LIMIT ?)')
        .run(keep);
    });
  }

  /** The recorded operations, oldest first. */
  operations(): Record<string, unknown>[] {
    const rows = this.db.prepare('SELECT data FROM operations ORDER BY created, id').all() as { data: string }[];
    return rows.map((r) => JSON.parse(r.data) as Record<string, unknown>);
  }

  getMeta(key: string): string | undefined {
    const r = this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
    return r?.value;
  }

  /** The ids of every recorded instance (the root's consistency check compares them with the instance dirs). */
  ids(): Set<string> {
    return new Set((this.db.prepare('SELECT id FROM instances').all() as { id: string }[]).map((r) => r.id));
  }

  // ----- the web console's one-time login tokens and sessions (engine/console.ts); only hashes are stored -----

  /** Keep a login token's hash until `expiresAt` (ms); expired ones are dropped on the way. */
  addLoginToken(hash: string, expiresAt: number, now = Date.now()): void {
    this.write(() =>
      this.db.transaction(() => {
        this.db.prepare('DELETE FROM console_tokens WHERE expires_at <= ?').run(now);
        this.db.prepare('INSERT INTO console_tokens (hash, expires_at) VALUES (?, ?)').run(hash, expiresAt);
      })(),
    );
  }

  /** Use up a login token: true once for a known, unexpired one (a compare-and-delete, safe across processes). */
  takeLoginToken(hash: string, now = Date.now()): boolean {
    return this.write(
      () =>
        this.db.prepare('DELETE FROM console_tokens WHERE hash = ? AND expires_at > ?').run(hash, now).changes === 1,
    );
  }

  addConsoleSession(hash: string, csrfHash: string, expiresAt: number, now = Date.now()): void {
    this.write(() =>
      this.db.transaction(() => {
        this.db.prepare('DELETE FROM console_sessions WHERE expires_at <= ?').run(now);
        this.db
          .prepare('INSERT INTO console_sessions (hash, csrf_hash, created_at, expires_at) VALUES (?, ?, ?, ?)')
          .run(hash, csrfHash, now, expiresAt);
      })(),
    );
  }

  /** A session that has not expired, by its hash. */
  consoleSession(
    hash: string,
    now = Date.now(),
  ): { csrfHash: string; createdAt: number; expiresAt: number } | undefined {
    const r = this.db
      .prepare('SELECT csrf_hash, created_at, expires_at FROM console_sessions WHERE hash = ? AND expires_at > ?')
      .get(hash, now) as { csrf_hash: string; created_at: number; expires_at: number } | undefined;
    return r && { csrfHash: r.csrf_hash, createdAt: r.created_at, expiresAt: r.expires_at };
  }

  /** End a session (logout); whether there was one. */
  removeConsoleSession(hash: string): boolean {
    return this.write(() => this.db.prepare('DELETE FROM console_sessions WHERE hash = ?').run(hash).changes === 1);
  }

  setMeta(key: string, value: string): void {
    this.write(() =>
      this.db
        .prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value')
        .run(key, value),
    );
  }
}

// ----- opening and validation (what hull does when hull.db is lost or damaged: src/engine/recover.ts) -----

export { DATABASE_FILE } from '../common/paths.js';

/**
 * Whether the root's database has content. A missing or 0-byte file would open as a new, empty store, which
 * is only right for a root that holds no instances (src/engine/recover.ts checks that first).
 */
export function databaseCondition(root: string): 'present' | 'missing' | 'empty' {
  try {
    return statSync(rootPaths(root).db).size > 0 ? 'present' : 'empty';
  } catch {
    return 'missing';
  }
}

/** SQLite's answers for a file that is not a database, or a damaged or truncated one. */
export function isCorruptDatabase(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT' || code === 'SQLITE_CORRUPT_VTAB';
}

/** The command that repairs `root`, as the user would type it (the root given when it is not the default one). */
export function recoverCommand(root: string): string {
  return `hull${root === '/var/lib/hull' ? '' : ` --root ${root}`} system recover`;
}

export function corruptDatabaseError(root: string, e: unknown): StateCorruptError {
  return new StateCorruptError(
    `the state database ${rootPaths(root).db} is unreadable (${(e as Error).message}); run "${recoverCommand(root)}": it moves the file aside and rebuilds the records from the instances on disk`,
    { cause: e },
  );
}

/**
 * What is wrong with the database file's header, if anything: not SQLite's magic, or fewer bytes than the pages
 * it names (a truncated file). SQLite checks the same when it reads page 1 from the file, but hull's pages are
 * mostly in the -wal file (hull does not checkpoint on exit), and with a WAL SQLite takes page 1 and the size
 * from there: a damaged main file would then surface only on the first query that reads one of its pages.
 */
function headerProblem(path: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null; // missing: SQLite makes a new one
  }
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return null;
    const h = Buffer.alloc(100);
    const n = readSync(fd, h, 0, 100, 0);
    if (n < 100 || h.toString('latin1', 0, 16) !== 'SQLite format 3\0') return 'file is not a database';
    const pageSize = h.readUInt16BE(16) === 1 ? 65536 : h.readUInt16BE(16);
    // the page count at offset 28 is valid when the change counter (24) matches version-valid-for (92)
    const pages = h.readUInt32BE(24) === h.readUInt32BE(92) ? h.readUInt32BE(28) : 0;
    if (pages * pageSize > size) return `truncated: ${size} of ${pages * pageSize} bytes`;
    return null;
  } finally {
    closeSync(fd);
  }
}

/**
 * Open (or create) the database and its schema. Reading the header and the schema is where SQLite finds a
 * file that is not a database or was truncated (its header names more pages than the file has).
 */
function openDatabase(root: string): Database.Database {
  const problem = headerProblem(rootPaths(root).db);
  if (problem) throw corruptDatabaseError(root, new Error(problem));
  let db: Database.Database | undefined;
  try {
    db = new Database(rootPaths(root).db, { timeout: 15000 });
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec(SCHEMA);
    return db;
  } catch (e) {
    db?.close();
    if (isCorruptDatabase(e)) throw corruptDatabaseError(root, e);
    throw e;
  }
}
