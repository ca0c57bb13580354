/**
 * The web console's credentials, kept by the engine so that the CLI (`hull console url`) and the daemon share
 * them through the state store without talking to each other:
 *
 * - one-time login tokens: 32 random bytes, stored as their SHA-256, valid for 5 minutes, used up by the first
 *   login (a compare-and-delete in the store, so two daemons cannot both accept one);
 * - sessions: a session secret (the HttpOnly cookie) and a CSRF secret (the cookie the page reads and echoes in a
 *   header), both stored as hashes, with an expiry;
 * - the daemon's self-signed TLS certificate (made once with openssl, reused later) and the address a daemon
 *   listens on, under <root>/daemon/.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import { InvalidArgumentError } from '../common/errors.js';
import { writeFileAtomic } from '../common/fsutil.js';
import { rootPaths } from '../common/paths.js';
import { runProgram } from '../host/proc.js';
import type { Engine } from './engine.js';

/** How long a login link stays valid. */
export const LOGIN_TOKEN_TTL_MS = 5 * 60_000;
/** How long a console session lasts unless the daemon is told otherwise (--session-ttl). */
export const DEFAULT_SESSION_TTL_MS = 12 * 3600_000;

const secret = (): string => randomBytes(32).toString('base64url');
const digest = (s: string): string => createHash('sha256').update(s).digest('hex');

/** A new one-time login token (the link's `?token=`); only its hash is stored. */
export function createLoginToken(engine: Engine, now = Date.now()): { token: string; expiresAt: number } {
  const token = secret();
  const expiresAt = now + LOGIN_TOKEN_TTL_MS;
  engine.store.addLoginToken(digest(token), expiresAt, now);
  return { token, expiresAt };
}

/** Use up a login token: true once, for a token that exists and has not expired. */
export function consumeLoginToken(engine: Engine, token: string, now = Date.now()): boolean {
  if (!token || token.length > 256) return false;
  return engine.store.takeLoginToken(digest(token), now);
}

export interface NewSession {
  /** the session cookie's value */
  session: string;
  /** the CSRF cookie's value, echoed by the page in X-Hull-CSRF */
  csrf: string;
  expiresAt: number;
}

export function createSession(engine: Engine, ttlMs = DEFAULT_SESSION_TTL_MS, now = Date.now()): NewSession {
  const session = secret();
  const csrf = secret();
  const expiresAt = now + ttlMs;
  engine.store.addConsoleSession(digest(session), digest(csrf), expiresAt, now);
  return { session, csrf, expiresAt };
}

export interface Session {
  /** the hash that names it in the store */
  id: string;
  expiresAt: number;
  /** whether `csrf` is this session's CSRF secret */
  csrfMatches(csrf: string): boolean;
}

/** The live session a cookie names, or undefined (unknown, ended or expired). */
export function sessionOf(engine: Engine, session: string, now = Date.now()): Session | undefined {
  if (!session || session.length > 256) return undefined;
  const id = digest(session);
  const row = engine.store.consoleSession(id, now);
  if (!row) return undefined;
  return {
    id,
    expiresAt: row.expiresAt,
    csrfMatches: (csrf) => {
      const a = Buffer.from(digest(csrf), 'hex');
      const b = Buffer.from(row.csrfHash, 'hex');
      return a.length === b.length && timingSafeEqual(a, b);
    },
  };
}

/** End a session (logout). */
export function endSession(engine: Engine, s: Session): void {
  engine.store.removeConsoleSession(s.id);
}

// ----- the daemon's certificate and address -----

/** The host names and addresses a self-signed certificate names: loopback, this host, and the listen host. */
function subjectAltNames(listenHost: string): string {
  const names = new Set(['DNS:localhost', 'IP:127.0.0.1', 'IP:::1']);
  const h = hostname();
  if (h) names.add(`DNS:${h}`);
  if (listenHost && listenHost !== '0.0.0.0' && listenHost !== '::')
    names.add(isIP(listenHost) ? `IP:${listenHost}` : `DNS:${listenHost}`);
  return [...names].join(',');
}

/**
 * The daemon's TLS certificate and key for --listen without --tls-cert: made on first start (a self-signed
 * ECDSA P-256 certificate from openssl, valid ~2 years) under <root>/daemon/tls/, reused afterwards.
 */
export async function selfSignedCertificate(root: string, listenHost: string): Promise<{ cert: string; key: string }> {
  const p = rootPaths(root);
  if (existsSync(p.daemonTlsCert) && existsSync(p.daemonTlsKey)) return { cert: p.daemonTlsCert, key: p.daemonTlsKey };
  mkdirSync(p.daemonTls, { recursive: true, mode: 0o700 });
  const tmp = `${p.daemonTls}/.new-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { mode: 0o700 });
  try {
    await runProgram(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '825',
        '-subj',
        '/CN=hull daemon',
        '-addext',
        `subjectAltName=${subjectAltNames(listenHost)}`,
        '-keyout',
        `${tmp}/key.pem`,
        '-out',
        `${tmp}/cert.pem`,
      ],
      { timeoutMs: 30_000, hint: 'install openssl, or give the daemon --tls-cert and --tls-key' },
    );
    // the key first: a certificate without its key is never left in place
    renameSync(`${tmp}/key.pem`, p.daemonTlsKey);
    renameSync(`${tmp}/cert.pem`, p.daemonTlsCert);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return { cert: p.daemonTlsCert, key: p.daemonTlsKey };
}

/** Record the address a daemon listens on (HOST:PORT), for `hull console url`. */
export function recordListen(root: string, address: string): void {
  const p = rootPaths(root);
  mkdirSync(p.daemon, { recursive: true, mode: 0o711 });
  writeFileAtomic(p.daemonListen, `${address}\n`);
}

/** Forget the recorded address, if it is still `address` (another daemon may have recorded its own since). */
export function forgetListen(root: string, address: string): void {
  if (recordedListen(root) === address) rmSync(rootPaths(root).daemonListen, { force: true });
}

/** The address a daemon on this root recorded, if any. */
export function recordedListen(root: string): string | undefined {
  try {
    return readFileSync(rootPaths(root).daemonListen, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** HOST:PORT, split; the host without brackets. */
export function parseListen(v: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(v);
  const port = Number(m?.[3]);
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new InvalidArgumentError(`invalid --listen "${v}": expected HOST:PORT`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

/** The console's one-time login link for a daemon listening on `listen`: `https://HOST:PORT/login?token=…`. */
export function loginLink(engine: Engine, listen: string): string {
  const { host, port } = parseListen(listen);
  // a wildcard address is reached on loopback from this host
  const h = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  const { token } = createLoginToken(engine);
  return `https://${isIP(h) === 6 ? `[${h}]` : h}:${port}/login?token=${token}`;
}
