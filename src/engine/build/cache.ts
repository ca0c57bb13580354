/**
 * The build cache of `hull build`: step key → the image state after that step, in `<root>/build-cache.db`
 * (SQLite, so a killed build never leaves a torn entry). Keys cover the parent state, the instruction's
 * cacheKey and, for COPY/ADD, a hash of the sources; values are JSON. Entries point at layer blobs that may
 * have been removed since (hull rmi): the builder checks the blobs before it uses a hit.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import { rootPaths } from '../../common/paths.js';

export class BuildCache {
  private db: BetterSqlite3.Database | undefined;
  readonly path: string;

  constructor(root: string) {
    this.path = rootPaths(root).buildCache;
  }

  private open(): BetterSqlite3.Database {
    if (!this.db) {
      // createRequire, not import(): the bundled CLI cannot import packages dynamically
      const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
      const db = new Database(this.path);
      db.pragma('busy_timeout = 10000');
      db.pragma('journal_mode = WAL');
      db.exec('CREATE TABLE IF NOT EXISTS steps (key TEXT PRIMARY KEY, value TEXT NOT NULL, created INTEGER NOT NULL)');
      this.db = db;
    }
    return this.db;
  }

  get(key: string): string | undefined {
    const row = this.open().prepare('SELECT value FROM steps WHERE key = ?').get(key) as { value: string } | undefined;
    return row?.value;
  }

  put(key: string, value: string): void {
    this.open()
      .prepare('INSERT OR REPLACE INTO steps (key, value, created) VALUES (?, ?, ?)')
      .run(key, value, Date.now());
  }

  /**
   * Forget entries: all of them, or those whose layer blobs `present` says are gone (a hit on one could
   * never be used again). Returns how many were deleted. Entries of a build running meanwhile in another
   * process are safe either way: its layers are held by its lease, and a missing entry only costs a rebuild.
   */
  prune(opts: { all: boolean; present: (digest: string) => boolean }): number {
    const db = this.open();
    if (opts.all) return db.prepare('DELETE FROM steps').run().changes;
    const doomed: string[] = [];
    for (const row of db.prepare('SELECT key, value FROM steps').iterate() as IterableIterator<{
      key: string;
      value: string;
    }>) {
      let layers: { digest: string }[] = [];
      try {
        layers = (JSON.parse(row.value) as { layers?: { digest: string }[] }).layers ?? [];
      } catch {
        /* unreadable: drop it */
      }
      if (!layers.every((l) => opts.present(l.digest))) doomed.push(row.key);
    }
    const del = db.prepare('DELETE FROM steps WHERE key = ?');
    db.transaction(() => {
      for (const k of doomed) del.run(k);
    })();
    return doomed.length;
  }

  /** Every entry: its key, when it was made and the layer blobs it points at (hull system df). */
  entries(): { key: string; created: number; layers: string[] }[] {
    if (!existsSync(this.path)) return [];
    const rows = this.open().prepare('SELECT key, value, created FROM steps ORDER BY created').all() as {
      key: string;
      value: string;
      created: number;
    }[];
    return rows.map((r) => {
      let layers: string[] = [];
      try {
        layers = ((JSON.parse(r.value) as { layers?: { digest: string }[] }).layers ?? []).map((l) => l.digest);
      } catch {
        /* unreadable: no layers */
      }
      return { key: r.key, created: r.created, layers };
    });
  }

  close(): void {
    this.db?.close();
    this.db = undefined;
  }
}
