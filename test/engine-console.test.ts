// The web console's credentials in the state store (engine/console.ts): one-time login tokens that expire, sessions
// with their CSRF secret and expiry, logout; only hashes are stored; two stores (two processes) agree.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import Database from 'better-sqlite3';
import { StateStore } from '../src/engine/store.js';
import type { Engine } from '../src/engine/engine.js';
import {
  consumeLoginToken,
  createLoginToken,
  createSession,
  endSession,
  LOGIN_TOKEN_TTL_MS,
  loginLink,
  parseListen,
  sessionOf,
} from '../src/engine/console.js';

const root = mkdtempSync(join(tmpdir(), 'hull-test-console-store-'));
const cli = new StateStore(root);
const daemon = new StateStore(root);
after(() => {
  cli.close();
  daemon.close();
  rmSync(root, { recursive: true, force: true });
});
// the functions use only the engine's store: the CLI's and the daemon's are two connections
const asCli = { store: cli } as unknown as Engine;
const asDaemon = { store: daemon } as unknown as Engine;

test('a login token works once, and not after 5 minutes', () => {
  const now = Date.now();
  const a = createLoginToken(asCli, now);
  assert.match(a.token, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(a.expiresAt, now + LOGIN_TOKEN_TTL_MS);
  assert.equal(consumeLoginToken(asDaemon, a.token, now + 1000), true);
  assert.equal(consumeLoginToken(asDaemon, a.token, now + 2000), false, 'used up');
  const b = createLoginToken(asCli, now);
  assert.equal(consumeLoginToken(asDaemon, b.token, now + LOGIN_TOKEN_TTL_MS), false, 'expired');
  assert.equal(consumeLoginToken(asDaemon, 'made-up', now), false);
  assert.equal(consumeLoginToken(asDaemon, '', now), false);
});

test('only hashes are stored', () => {
  const { token } = createLoginToken(asCli);
  const s = createSession(asDaemon, 60_000);
  const db = new Database(join(root, 'hull.db'), { readonly: true });
  try {
    const dump = JSON.stringify([
      db.prepare('SELECT * FROM console_tokens').all(),
      db.prepare('SELECT * FROM console_sessions').all(),
    ]);
    for (const secret of [token, s.session, s.csrf]) assert.equal(dump.includes(secret), false);
  } finally {
    db.close();
  }
});

test('a session: its CSRF secret, its expiry, logout', () => {
  const now = Date.now();
  const s = createSession(asDaemon, 3600_000, now);
  const found = sessionOf(asDaemon, s.session, now + 1000);
  assert.ok(found);
  assert.equal(found.expiresAt, now + 3600_000);
  assert.equal(found.csrfMatches(s.csrf), true);
  assert.equal(found.csrfMatches(s.session), false);
  assert.equal(found.csrfMatches(''), false);
  assert.equal(sessionOf(asDaemon, s.session, now + 3600_000), undefined, 'expired');
  assert.equal(sessionOf(asDaemon, s.csrf, now), undefined, 'the CSRF secret is no session');
  endSession(asDaemon, found);
  assert.equal(sessionOf(asDaemon, s.session, now + 1000), undefined, 'logged out');
});

test('the login link and --listen addresses', () => {
  assert.deepEqual(parseListen('127.0.0.1:8443'), { host: '127.0.0.1', port: 8443 });
  assert.deepEqual(parseListen('[::1]:8443'), { host: '::1', port: 8443 });
  assert.deepEqual(parseListen(':8443'), { host: '0.0.0.0', port: 8443 });
  assert.throws(() => parseListen('8443'), /expected HOST:PORT/);
  assert.match(loginLink(asCli, '0.0.0.0:8443'), /^https:\/\/127\.0\.0\.1:8443\/login\?token=[A-Za-z0-9_-]{43}$/);
  assert.match(loginLink(asCli, '[::]:8443'), /^https:\/\/\[::1\]:8443\/login\?token=/);
  const link = new URL(loginLink(asCli, 'localhost:9'));
  assert.equal(consumeLoginToken(asDaemon, link.searchParams.get('token')!), true);
});
