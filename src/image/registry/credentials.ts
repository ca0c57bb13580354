/**
 * Registry credentials saved by `hull login`: `<root>/auth.json` in docker's config.json format
 * (`{"auths": {"REGISTRY": {"auth": base64("user:password")}}}`), mode 0600, replaced atomically.
 * Keys are registry hosts as the user wrote them (`127.0.0.1:5000`, `quay.io`); docker.io
 * credentials are also found under docker's own keys (`https://index.docker.io/v1/`, ...).
 */
import { chmodSync, readFileSync } from 'node:fs';
import { InvalidArgumentError, IntegrityError } from '../../common/errors.js';
import { writeFileAtomic } from '../../common/fsutil.js';

export interface Credentials {
  username: string;
  password: string;
}

interface AuthFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string }>;
  [k: string]: unknown;
}

const DOCKER_HUB_KEYS = ['docker.io', 'index.docker.io', 'registry-1.docker.io', 'https://index.docker.io/v1/'];

/** The keys under which credentials for `registry` may be stored. */
function keysFor(registry: string): string[] {
  return DOCKER_HUB_KEYS.includes(registry) ? DOCKER_HUB_KEYS : [registry, `https://${registry}`, `http://${registry}`];
}

/** The credentials store of one hull root. */
export class CredentialStore {
  constructor(readonly path: string) {}

  private read(): AuthFile {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw e;
    }
    try {
      const parsed = JSON.parse(text) as AuthFile;
      return parsed && typeof parsed === 'object' ? parsed : {};
    } catch (e) {
      throw new IntegrityError(
        `${this.path} is not valid JSON (${(e as Error).message}); fix it or remove it and log in again`,
      );
    }
  }

  private write(file: AuthFile): void {
    writeFileAtomic(this.path, JSON.stringify(file, null, 2) + '\n', 0o600);
    chmodSync(this.path, 0o600);
  }

  /** Credentials saved for `registry`, if any. */
  get(registry: string): Credentials | undefined {
    const auths = this.read().auths ?? {};
    for (const key of keysFor(registry)) {
      const entry = auths[key];
      if (!entry) continue;
      if (entry.username !== undefined && entry.password !== undefined)
        return { username: entry.username, password: entry.password };
      if (entry.auth) {
        const plain = Buffer.from(entry.auth, 'base64').toString('utf8');
        const colon = plain.indexOf(':');
        if (colon > 0) return { username: plain.slice(0, colon), password: plain.slice(colon + 1) };
      }
    }
    return undefined;
  }

  /** Save credentials for `registry` (replacing earlier ones). */
  set(registry: string, creds: Credentials): void {
    if (creds.username.includes(':'))
      throw new InvalidArgumentError(`invalid user name "${creds.username}": it may not contain ":"`);
    const file = this.read();
    const auths = { ...(file.auths ?? {}) };
    for (const key of keysFor(registry)) delete auths[key];
    auths[registry] = { auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64') };
    this.write({ ...file, auths });
  }

  /** Forget credentials for `registry`; false when there were none. */
  remove(registry: string): boolean {
    const file = this.read();
    const auths = { ...(file.auths ?? {}) };
    let found = false;
    for (const key of keysFor(registry)) {
      if (key in auths) {
        delete auths[key];
        found = true;
      }
    }
    if (found) this.write({ ...file, auths });
    return found;
  }
}

/**
 * The saved logins of a root, with the credentials a client sent for one request in front of them (the daemon's
 * X-Registry-Auth): they are used for that request only and never saved.
 */
export class RequestCredentials extends CredentialStore {
  constructor(
    path: string,
    private readonly sent: Credentials,
  ) {
    super(path);
  }

  override get(_registry: string): Credentials | undefined {
    return this.sent;
  }
}
