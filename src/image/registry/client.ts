/**
 * A client for one registry, per the OCI distribution spec (`/v2/<name>/manifests|blobs/...`),
 * on Node's built-in fetch.
 *
 * - Scheme: HTTPS, except plain HTTP for localhost / 127.0.0.1 / ::1 and for registries marked
 *   insecure (`--tls-verify=false`, or listed in HULL_INSECURE_REGISTRIES, comma separated).
 * - Auth: a 401 answer's WWW-Authenticate challenge decides. Bearer: a token is fetched from the
 *   realm (service and scope as asked, user and password as basic auth when saved) and cached per
 *   scope; Basic: the saved user and password are sent. A second 401 is an AuthenticationError.
 * - Retries: network errors, 429 and 5xx answers are retried with exponential back-off (honouring
 *   Retry-After up to a cap), a bounded number of times; then one RegistryError line.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { AuthenticationError, NotFoundError, RegistryError } from '../../common/errors.js';
import { sha256 } from '../layout.js';
import { parseChallenges } from './auth.js';
import type { CredentialStore, Credentials } from './credentials.js';

/** Manifest media types hull asks for and understands. */
export const MANIFEST_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;

const ACCEPT = Object.values(MANIFEST_TYPES).join(', ');
/** Manifests larger than this are refused (the distribution spec lets registries stop at 4 MiB). */
const MAX_MANIFEST = 4 * 1024 * 1024;
const USER_AGENT = 'hull/0.1';

export interface RegistryClientOptions {
  /** credentials for this registry, if saved */
  credentials?: Credentials;
  /** talk plain HTTP (`--tls-verify=false`) */
  insecure?: boolean;
  /** attempts per request for network errors, 429 and 5xx (default 4) */
  attempts?: number;
  /** first back-off delay in ms, doubled per attempt (default 250) */
  backoffMs?: number;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  /** makes the body afresh for each attempt */
  body?: () => BodyInit;
  /** token scopes (`repository:NAME:pull`) */
  scopes: string[];
  /** a URL instead of base + path (upload locations) */
  url?: string;
}

export interface FetchedManifest {
  bytes: Buffer;
  mediaType: string;
  digest: string;
}

/** The host names that are always spoken to over plain HTTP. */
function isLocal(registry: string): boolean {
  const host = registry.startsWith('[') ? registry.slice(0, registry.indexOf(']') + 1) : registry.split(':')[0]!;
  return host === 'localhost' || host === '127.0.0.1' || host === '[::1]' || /^127\./.test(host);
}

/** Whether `registry` is listed in HULL_INSECURE_REGISTRIES. */
export function listedInsecure(registry: string): boolean {
  return (process.env.HULL_INSECURE_REGISTRIES ?? '').split(/[,\s]+/).filter(Boolean).includes(registry);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One GET with node:http or node:https (by the URL's scheme); resolves with the answer's head. */
function httpGet(url: URL, headers: Record<string, string>): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method: 'GET', headers }, resolve);
    req.on('error', reject);
    req.end();
  });
}

/** The text of a registry's error body (`{"errors":[{"code","message"}]}`), or the status line. */
async function errorText(res: Response): Promise<{ codes: string[]; text: string }> {
  let body = '';
  try { body = await res.text(); } catch { /* no body */ }
  try {
    const parsed = JSON.parse(body) as { errors?: { code?: string; message?: string }[] };
    if (Array.isArray(parsed.errors) && parsed.errors.length) {
      return { codes: parsed.errors.map((e) => e.code ?? ''), text: parsed.errors.map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ') };
    }
  } catch { /* not JSON */ }
  return { codes: [], text: `${res.status} ${res.statusText}`.trim() };
}

/** A short description of a fetch network failure (`connection refused`, ...). */
function networkCause(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code ?? (e as { code?: string }).code;
  const names: Record<string, string> = {
    ECONNREFUSED: 'connection refused', ENOTFOUND: 'host not found', ECONNRESET: 'connection reset',
    ETIMEDOUT: 'timed out', EAI_AGAIN: 'name lookup failed', EHOSTUNREACH: 'host unreachable', UND_ERR_SOCKET: 'connection closed',
  };
  if (code && names[code]) return `${names[code]} (${code})`;
  return cause?.message ?? (e as Error).message ?? String(e);
}

export class RegistryClient {
  /** `https://host[:port]` or `http://...` */
  readonly base: string;
  private readonly attempts: number;
  private readonly backoffMs: number;
  private readonly tokens = new Map<string, string>();
  private useBasic = false;

  /** @param registry the registry host as references name it (`docker.io`, `127.0.0.1:5000`) */
  constructor(readonly registry: string, private readonly opts: RegistryClientOptions = {}) {
    const host = registry === 'docker.io' ? 'registry-1.docker.io' : registry;
    const plain = opts.insecure || isLocal(registry) || listedInsecure(registry);
    this.base = `${plain ? 'http' : 'https'}://${host}`;
    this.attempts = Math.max(1, opts.attempts ?? 4);
    this.backoffMs = opts.backoffMs ?? 250;
  }

  /**
   * One request, with auth and retries. Returns any answer that is not 401, 429 or 5xx (the
   * caller checks it); throws AuthenticationError or RegistryError otherwise.
   */
  async request(method: string, path: string, o: RequestOptions): Promise<Response> {
    const url = o.url ?? this.base + path;
    const scopeKey = o.scopes.join(' ');
    let authTries = 0;
    for (let attempt = 1; ; attempt++) {
      const headers: Record<string, string> = { 'User-Agent': USER_AGENT, ...(o.headers ?? {}) };
      const token = this.tokens.get(scopeKey);
      if (token) headers.Authorization = `Bearer ${token}`;
      else if (this.useBasic && this.opts.credentials) headers.Authorization = basic(this.opts.credentials);
      let res: Response;
      try {
        const body = o.body?.();
        res = await fetch(url, { method, headers, ...(body !== undefined ? { body, duplex: 'half' } as RequestInit : {}), redirect: 'follow' });
      } catch (e) {
        if (e instanceof RegistryError || e instanceof AuthenticationError) throw e;
        if (attempt < this.attempts) { await sleep(this.delay(attempt)); continue; }
        throw new RegistryError(`registry ${this.registry} is not reachable at ${this.base}: ${networkCause(e)}${attempt > 1 ? ` (after ${attempt} attempts)` : ''}; check that it runs and the address is right`);
      }
      if (res.status === 401 && authTries < 1) {
        authTries++;
        await res.body?.cancel();
        await this.authenticate(res.headers.get('www-authenticate') ?? '', o.scopes, scopeKey);
        attempt--; // an auth round trip is not a failed attempt
        continue;
      }
      if (res.status === 401) {
        const { text } = await errorText(res);
        throw new AuthenticationError(`registry ${this.registry} refused ${this.opts.credentials ? `the credentials of ${this.opts.credentials.username}` : 'access without credentials'} (${text}); log in with: hull login ${this.registry}`);
      }
      if (res.status === 429 || res.status >= 500) {
        if (attempt < this.attempts) {
          const retryAfter = Number(res.headers.get('retry-after'));
          await res.body?.cancel();
          await sleep(Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter * 1000, 10_000) : this.delay(attempt));
          continue;
        }
        const { text } = await errorText(res);
        const what = res.status === 429 ? 'is rate-limiting hull (429 Too Many Requests)' : `failed with ${text}`;
        throw new RegistryError(`registry ${this.registry} ${what} for ${method} ${new URL(url).pathname}, ${attempt} attempts; try again later`);
      }
      return res;
    }
  }

  private delay(attempt: number): number {
    return this.backoffMs * 2 ** (attempt - 1);
  }

  /** Answer a 401 challenge: fetch a bearer token, or switch to basic auth. */
  private async authenticate(header: string, scopes: string[], scopeKey: string): Promise<void> {
    const challenges = parseChallenges(header);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const creds = this.opts.credentials;
    if (bearer?.params.realm) {
      const realm = new URL(bearer.params.realm, this.base);
      if (bearer.params.service) realm.searchParams.set('service', bearer.params.service);
      const wanted = new Set(scopes);
      for (const s of (bearer.params.scope ?? '').split(' ').filter(Boolean)) wanted.add(s);
      for (const s of wanted) realm.searchParams.append('scope', s);
      if (creds) realm.searchParams.set('account', creds.username);
      let res: Response;
      try {
        res = await fetch(realm, { headers: { 'User-Agent': USER_AGENT, ...(creds ? { Authorization: basic(creds) } : {}) } });
      } catch (e) {
        throw new RegistryError(`the token server of registry ${this.registry} (${realm.origin}) is not reachable: ${networkCause(e)}`);
      }
      if (res.status === 401 || res.status === 403) {
        const { text } = await errorText(res);
        throw new AuthenticationError(`registry ${this.registry} refused ${creds ? `the credentials of ${creds.username}` : 'an anonymous token'} (${text}); log in with: hull login ${this.registry}`);
      }
      if (!res.ok) {
        const { text } = await errorText(res);
        throw new RegistryError(`the token server of registry ${this.registry} failed: ${text}`);
      }
      const body = await res.json().catch(() => ({})) as { token?: string; access_token?: string };
      const token = body.token ?? body.access_token;
      if (!token) throw new RegistryError(`the token server of registry ${this.registry} answered without a token`);
      this.tokens.set(scopeKey, token);
      return;
    }
    if (challenges.some((c) => c.scheme === 'basic') && creds) {
      this.useBasic = true;
      return;
    }
    throw new AuthenticationError(`registry ${this.registry} requires authentication; log in with: hull login ${this.registry}`);
  }

  /** GET /v2/: checks that the registry answers and, with credentials, that they are accepted. */
  async ping(): Promise<void> {
    const res = await this.request('GET', '/v2/', { scopes: [] });
    await res.body?.cancel();
    if (!res.ok) throw new RegistryError(`registry ${this.registry} does not speak the registry API at ${this.base}/v2/ (${res.status} ${res.statusText})`);
  }

  /** A manifest (or index) by tag or digest, with its bytes verified against the digest when it is known. */
  async getManifest(repo: string, ref: string, display: string): Promise<FetchedManifest> {
    const res = await this.request('GET', `/v2/${repo}/manifests/${ref}`, { scopes: [`repository:${repo}:pull`], headers: { Accept: ACCEPT } });
    if (res.status === 404) {
      const { text } = await errorText(res);
      throw new NotFoundError(`image not found in registry: ${display} (${text})`);
    }
    if (!res.ok) {
      const { text } = await errorText(res);
      throw new RegistryError(`registry ${this.registry} refused the manifest of ${display}: ${text}`);
    }
    if (Number(res.headers.get('content-length') ?? 0) > MAX_MANIFEST) throw new RegistryError(`the manifest of ${display} is larger than ${MAX_MANIFEST} bytes`);
    const bytes = Buffer.from(await res.arrayBuffer());
    if (bytes.length > MAX_MANIFEST) throw new RegistryError(`the manifest of ${display} is larger than ${MAX_MANIFEST} bytes`);
    const digest = sha256(bytes);
    const expected = ref.startsWith('sha256:') ? ref : res.headers.get('docker-content-digest');
    if (expected?.startsWith('sha256:') && expected !== digest) {
      throw new RegistryError(`registry ${this.registry} sent a manifest for ${display} whose digest is ${digest}, not ${expected}; nothing was stored`);
    }
    let mediaType = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
    try {
      const parsed = JSON.parse(bytes.toString('utf8')) as { mediaType?: string; manifests?: unknown; config?: unknown };
      if (parsed.mediaType) mediaType = parsed.mediaType;
      else if (!Object.values(MANIFEST_TYPES).includes(mediaType as never)) mediaType = parsed.manifests ? MANIFEST_TYPES.ociIndex : MANIFEST_TYPES.ociManifest;
    } catch {
      throw new RegistryError(`the manifest of ${display} from registry ${this.registry} is not JSON`);
    }
    return { bytes, mediaType, digest };
  }

  /** Whether the repository has the blob (HEAD). */
  async hasBlob(repo: string, digest: string, scopes: string[]): Promise<boolean> {
    const res = await this.request('HEAD', `/v2/${repo}/blobs/${digest}`, { scopes });
    await res.body?.cancel();
    if (res.status === 404) return false;
    if (res.ok) return true;
    throw new RegistryError(`registry ${this.registry} failed to check blob ${digest} of ${repo}: ${res.status} ${res.statusText}`);
  }

  /**
   * A blob's bytes as a stream, for layer downloads. Tries node:http(s) first: its Buffer chunks cost about
   * a third of the CPU time of fetch's web streams, which shows on a fast local registry (the pull's
   * throughput is CPU-bound there). Redirects (registries hand blobs to object stores) are followed, with the
   * Authorization header dropped when the origin changes. Any other answer, or a connection error, goes the
   * fetch way ({@link getBlob}): auth challenges, retries and error messages live there.
   */
  async streamBlob(repo: string, digest: string): Promise<AsyncIterable<Uint8Array>> {
    const scopeKey = `repository:${repo}:pull`;
    const token = this.tokens.get(scopeKey);
    const auth = token ? `Bearer ${token}` : this.useBasic && this.opts.credentials ? basic(this.opts.credentials) : undefined;
    let url = new URL(`${this.base}/v2/${repo}/blobs/${digest}`);
    const origin = url.origin;
    for (let hop = 0; hop < 6; hop++) {
      const headers: Record<string, string> = { 'User-Agent': USER_AGENT, ...(auth && url.origin === origin ? { Authorization: auth } : {}) };
      let res: IncomingMessage;
      try {
        res = await httpGet(url, headers);
      } catch {
        break;
      }
      const status = res.statusCode ?? 0;
      if (status === 200) return res;
      res.resume();
      const location = res.headers.location;
      if (status >= 300 && status < 400 && location) {
        url = new URL(location, url);
        continue;
      }
      break;
    }
    const res = await this.getBlob(repo, digest);
    return res.body as unknown as AsyncIterable<Uint8Array>;
  }

  /** GET a blob; the answer's body is the caller's to read (and verify). */
  async getBlob(repo: string, digest: string): Promise<Response> {
    const res = await this.request('GET', `/v2/${repo}/blobs/${digest}`, { scopes: [`repository:${repo}:pull`] });
    if (res.status === 404) {
      await res.body?.cancel();
      throw new RegistryError(`registry ${this.registry} does not have blob ${digest} of ${repo} (BLOB_UNKNOWN)`);
    }
    if (!res.ok || !res.body) {
      const { text } = await errorText(res);
      throw new RegistryError(`registry ${this.registry} refused blob ${digest} of ${repo}: ${text}`);
    }
    return res;
  }

  /**
   * Start an upload; with `mountFrom`, ask to mount the blob from that repository of the same
   * registry instead. Returns 'mounted', or the upload URL.
   */
  async startUpload(repo: string, digest: string, mountFrom?: string): Promise<'mounted' | string> {
    const scopes = [`repository:${repo}:pull,push`, ...(mountFrom ? [`repository:${mountFrom}:pull`] : [])];
    const q = mountFrom ? `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(mountFrom)}` : '';
    const res = await this.request('POST', `/v2/${repo}/blobs/uploads/${q}`, { scopes, headers: { 'Content-Length': '0' } });
    await res.body?.cancel();
    if (res.status === 201 && mountFrom) return 'mounted';
    if (res.status !== 202) throw new RegistryError(`registry ${this.registry} refused to start an upload to ${repo}: ${res.status} ${res.statusText}`);
    const location = res.headers.get('location');
    if (!location) throw new RegistryError(`registry ${this.registry} started an upload to ${repo} without a Location`);
    return new URL(location, this.base).toString();
  }

  /** PATCH one chunk of an upload; returns the next upload URL. */
  async uploadChunk(repo: string, url: string, start: number, length: number, body: () => BodyInit): Promise<string> {
    const res = await this.request('PATCH', '', {
      url, body, scopes: [`repository:${repo}:pull,push`],
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(length), 'Content-Range': `${start}-${start + length - 1}` },
    });
    await res.body?.cancel();
    if (res.status !== 202) throw new RegistryError(`registry ${this.registry} refused a chunk of an upload to ${repo}: ${res.status} ${res.statusText}`);
    return new URL(res.headers.get('location') ?? url, this.base).toString();
  }

  /** Finish an upload with PUT ?digest= (and the whole blob as the body for a monolithic upload). */
  async finishUpload(repo: string, url: string, digest: string, body?: { length: number; make: () => BodyInit }): Promise<void> {
    const u = new URL(url);
    u.searchParams.set('digest', digest);
    const res = await this.request('PUT', '', {
      url: u.toString(), scopes: [`repository:${repo}:pull,push`],
      ...(body ? { body: body.make } : {}),
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(body?.length ?? 0) },
    });
    if (res.status !== 201) {
      const { text } = await errorText(res);
      throw new RegistryError(`registry ${this.registry} refused blob ${digest} for ${repo}: ${text}`);
    }
    await res.body?.cancel();
  }

  /** PUT a manifest under a tag (or digest). Returns the digest the registry reports. */
  async putManifest(repo: string, ref: string, bytes: Buffer, mediaType: string): Promise<string> {
    const res = await this.request('PUT', `/v2/${repo}/manifests/${ref}`, {
      scopes: [`repository:${repo}:pull,push`], body: () => new Uint8Array(bytes), headers: { 'Content-Type': mediaType },
    });
    if (res.status !== 201 && res.status !== 200) {
      const { text } = await errorText(res);
      throw new RegistryError(`registry ${this.registry} refused the manifest for ${repo}:${ref}: ${text}`);
    }
    await res.body?.cancel();
    return res.headers.get('docker-content-digest') ?? sha256(bytes);
  }
}

function basic(c: Credentials): string {
  return 'Basic ' + Buffer.from(`${c.username}:${c.password}`).toString('base64');
}

/** The options pull and push share for reaching a registry. */
export interface TransferClientOptions {
  insecure?: boolean;
  credentials?: CredentialStore;
  attempts?: number;
  backoffMs?: number;
}

/** A client for `registry` with the saved credentials for it and the caller's transport options. */
export function clientFor(registry: string, opts: TransferClientOptions): RegistryClient {
  const creds = opts.credentials?.get(registry);
  return new RegistryClient(registry, {
    ...(creds ? { credentials: creds } : {}),
    ...(opts.insecure ? { insecure: true } : {}),
    ...(opts.attempts ? { attempts: opts.attempts } : {}),
    ...(opts.backoffMs !== undefined ? { backoffMs: opts.backoffMs } : {}),
  });
}
