/**
 * A client for one registry, per the OCI distribution spec (`/v2/<name>/manifests|blobs/...`),
 * on Node's built-in fetch.
 *
 * - Scheme: HTTPS, except plain HTTP for localhost / 127.0.0.1 / ::1 and for registries marked
 *   insecure (`--tls-verify=false`, or listed in HULL_INSECURE_REGISTRIES, comma separated).
 * - Auth: a 401 answer's WWW-Authenticate challenge decides. Bearer: a token is fetched from the
 *   realm (service and scope as asked, user and password as basic auth when saved) and cached per
 *   scope; Basic: the saved user and password are sent. A second 401 is an AuthenticationError.
 * - Retries: network errors, stalls, 429 and 5xx answers are retried with exponential back-off (honouring
 *   Retry-After up to a cap), a bounded number of times; then one RegistryError line.
 * - Stalls: every transfer (manifests, blobs, uploads, token requests) has a stall timeout, as containerd
 *   has: when no byte moves for that long (waiting for an answer, reading its body, or sending a request
 *   body), the attempt is abandoned (StallError) and retried. Default 30 s; `--stall-timeout` or
 *   HULL_REGISTRY_STALL_TIMEOUT (seconds, 0 = none).
 * - Blobs resume: {@link RegistryClient.openBlob} asks for `Range: bytes=N-` and says whether the registry
 *   honoured it (206) or sent the whole blob (200).
 */
import type { IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import { AuthenticationError, NotFoundError, RegistryError } from '../../common/errors.js';
import { sha256 } from '../layout.js';
import { parseChallenges } from './auth.js';
import type { CredentialStore, Credentials } from './credentials.js';
import { hullEnv } from '../../common/env.js';

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
  /** abandon an attempt when no byte moves for this long, in ms (default 30 s; 0: never) */
  stallTimeoutMs?: number;
}

/** The default stall timeout (containerd's is 5 min for a whole blob; per-byte silence is checked here). */
export const DEFAULT_STALL_TIMEOUT_MS = 30_000;

/** No byte moved for the stall timeout: the attempt was abandoned (retryable; not a HullError). */
export class StallError extends Error {
  readonly code = 'ESTALL';
  constructor(
    readonly ms: number,
    readonly what = 'the registry',
  ) {
    super(`${what} sent no data for ${ms / 1000} s (stall timeout)`);
  }
}

export interface RequestOptions {
  headers?: Record<string, string>;
  /** makes the body afresh for each attempt */
  body?: () => BodyInit;
  /** token scopes (`repository:NAME:pull`) */
  scopes: string[];
  /** a URL instead of base + path (upload locations) */
  url?: string;
  /** read the whole answer inside the retry loop (a stall or reset while reading is retried too) */
  buffer?: boolean;
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
  return (hullEnv('HULL_INSECURE_REGISTRIES') ?? '')
    .split(/[,\s]+/)
    .filter(Boolean)
    .includes(registry);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * One GET with node:http or node:https (by the URL's scheme); resolves with the answer's head. The socket's idle
 * timeout is the stall timeout, before the head and while the body is read: the request is destroyed with a
 * StallError (`stalled()` then says so, for the body's reader).
 */
// node:http and node:https are loaded on the first request: most hull commands (and a cached build) make none,
// and loading them is a noticeable part of a command's start-up
const lazyRequire = createRequire(import.meta.url);
const requestOf = (https: boolean): typeof import('node:http').request =>
  https
    ? (lazyRequire('node:https') as typeof import('node:https')).request
    : (lazyRequire('node:http') as typeof import('node:http')).request;

function httpGet(
  url: URL,
  headers: Record<string, string>,
  stallMs: number,
  signal?: AbortSignal,
): Promise<{ res: IncomingMessage; stalled: () => StallError | undefined }> {
  return new Promise((resolve, reject) => {
    let stall: StallError | undefined;
    const req = requestOf(url.protocol === 'https:')(
      url,
      {
        method: 'GET',
        headers,
        ...(stallMs > 0 ? { timeout: stallMs } : {}),
        ...(signal ? { signal } : {}),
      },
      (res) => resolve({ res, stalled: () => stall }),
    );
    req.on('timeout', () => {
      stall = new StallError(stallMs);
      req.destroy(stall);
    });
    req.on('error', (e) => reject(stall ?? e));
    req.end();
  });
}

/** Ends `timer` and arms it again: `fire` runs when it is not re-armed within `ms`. */
function stallTimer(ms: number, fire: () => void): { arm(): void; stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  return {
    arm() {
      clearTimeout(timer);
      if (ms > 0) timer = setTimeout(fire, ms);
    },
    stop() {
      clearTimeout(timer);
      timer = undefined;
    },
  };
}

/** The body of a node:http answer, with a stall (the socket's timeout) reported as the StallError it is. */
async function* guarded(res: IncomingMessage, stalled: () => StallError | undefined): AsyncIterable<Uint8Array> {
  try {
    for await (const chunk of res) yield chunk as Uint8Array;
  } catch (e) {
    throw stalled() ?? e;
  }
  if (!res.complete)
    throw (
      stalled() ?? Object.assign(new Error('the connection closed before the end of the blob'), { code: 'ECONNRESET' })
    );
}

const NULL_BODY = new Set([101, 103, 204, 205, 304]);

/**
 * fetch with a stall timeout: the attempt is aborted when no byte moves for `ms`, while the request body is sent
 * (each chunk taken re-arms the timer), while waiting for the answer's head, and while the caller reads the answer's
 * body (the timer runs only while a read waits). Rejects, or errors the body, with a StallError.
 */
export async function stallFetch(url: string | URL, init: RequestInit, ms: number): Promise<Response> {
  if (!(ms > 0)) return fetch(url, init);
  const ac = new AbortController();
  let stalled: StallError | undefined;
  const timer = stallTimer(ms, () => {
    stalled = new StallError(ms);
    ac.abort(stalled);
  });
  let body = init.body;
  if (body instanceof Uint8Array && body.length > 64 * 1024) {
    const bytes = body;
    let off = 0;
    body = new ReadableStream<Uint8Array>({
      pull(ctl) {
        if (off >= bytes.length) return ctl.close();
        ctl.enqueue(bytes.subarray(off, off + 64 * 1024));
        off += 64 * 1024;
      },
    });
  }
  if (body instanceof ReadableStream) {
    const reader = (body as ReadableStream<Uint8Array>).getReader();
    body = new ReadableStream<Uint8Array>(
      {
        async pull(ctl) {
          const r = await reader.read();
          timer.arm(); // the previous chunk went out
          if (r.done) ctl.close();
          else ctl.enqueue(r.value);
        },
        cancel(reason) {
          return reader.cancel(reason);
        },
      },
      { highWaterMark: 0 },
    );
  }
  timer.arm();
  let res: Response;
  try {
    res = await fetch(url, { ...init, ...(body !== undefined ? { body } : {}), signal: ac.signal });
  } catch (e) {
    timer.stop();
    throw stalled ?? e;
  }
  timer.stop();
  if (!res.body || NULL_BODY.has(res.status)) return res;
  const reader = res.body.getReader();
  const watched = new ReadableStream<Uint8Array>(
    {
      async pull(ctl) {
        timer.arm();
        let r: ReadableStreamReadResult<Uint8Array>;
        try {
          r = await reader.read();
        } catch (e) {
          throw stalled ?? e;
        } finally {
          timer.stop();
        }
        if (r.done) ctl.close();
        else ctl.enqueue(r.value);
      },
      cancel(reason) {
        timer.stop();
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
  return new Response(watched, { status: res.status, statusText: res.statusText, headers: res.headers });
}

/** The text of a registry's error body (`{"errors":[{"code","message"}]}`), or the status line. */
async function errorText(res: Response): Promise<{ codes: string[]; text: string }> {
  let body = '';
  try {
    body = await res.text();
  } catch {
    /* no body */
  }
  try {
    const parsed = JSON.parse(body) as { errors?: { code?: string; message?: string }[] };
    if (Array.isArray(parsed.errors) && parsed.errors.length) {
      return {
        codes: parsed.errors.map((e) => e.code ?? ''),
        text: parsed.errors.map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; '),
      };
    }
  } catch {
    /* not JSON */
  }
  return { codes: [], text: `${res.status} ${res.statusText}`.trim() };
}

/** The system error code behind a fetch failure (undici wraps it in `cause`). */
function errnoOf(e: unknown): string | undefined {
  return (e as { cause?: { code?: string } }).cause?.code ?? (e as { code?: string }).code;
}

/** What to do about an unreachable registry; for a host name that is not found, why docker and hull took it for a host. */
function hostHint(registry: string, e: unknown): string {
  if (errnoOf(e) === 'ENOTFOUND') {
    const first = registry.split(':')[0]!;
    if (!first.includes('.') && first !== first.toLowerCase()) {
      return `"${first}" was taken for a registry host because it has uppercase letters (as docker does); repository names must be lowercase`;
    }
    return "check the registry's name";
  }
  return 'check that it runs and the address is right';
}

/** A short description of a fetch network failure (`connection refused`, ...). */
function networkCause(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code ?? (e as { code?: string }).code;
  const names: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ENOTFOUND: 'host not found',
    ECONNRESET: 'connection reset',
    ETIMEDOUT: 'timed out',
    EAI_AGAIN: 'name lookup failed',
    EHOSTUNREACH: 'host unreachable',
    UND_ERR_SOCKET: 'connection closed',
  };
  if (code && names[code]) return `${names[code]} (${code})`;
  return cause?.message ?? (e as Error).message ?? String(e);
}

export class RegistryClient {
  /** `https://host[:port]` or `http://...` */
  readonly base: string;
  private readonly attempts: number;
  private readonly backoffMs: number;
  /** the stall timeout in ms (0: none) */
  readonly stallMs: number;
  private readonly tokens = new Map<string, string>();
  private useBasic = false;

  /** @param registry the registry host as references name it (`docker.io`, `127.0.0.1:5000`) */
  constructor(
    readonly registry: string,
    private readonly opts: RegistryClientOptions = {},
  ) {
    const host = registry === 'docker.io' ? 'registry-1.docker.io' : registry;
    const plain = opts.insecure || isLocal(registry) || listedInsecure(registry);
    this.base = `${plain ? 'http' : 'https'}://${host}`;
    this.attempts = Math.max(1, opts.attempts ?? 4);
    this.backoffMs = opts.backoffMs ?? 250;
    this.stallMs = opts.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
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
        res = await stallFetch(
          url,
          {
            method,
            headers,
            ...(body !== undefined ? ({ body, duplex: 'half' } as RequestInit) : {}),
            redirect: 'follow',
          },
          this.stallMs,
        );
        if (o.buffer && res.status !== 401 && res.status !== 429 && res.status < 500) {
          // read it here, so that a stall or a reset in the middle of the body is retried like one before the head
          const bytes = NULL_BODY.has(res.status) || method === 'HEAD' ? null : new Uint8Array(await res.arrayBuffer());
          res = new Response(bytes, { status: res.status, statusText: res.statusText, headers: res.headers });
        }
      } catch (e) {
        if (e instanceof RegistryError || e instanceof AuthenticationError) throw e;
        // "no such host" is the name service's answer, not a passing failure (EAI_AGAIN is one, and is retried)
        if (attempt < this.attempts && errnoOf(e) !== 'ENOTFOUND') {
          await sleep(this.delay(attempt));
          continue;
        }
        const tries = attempt > 1 ? ` (after ${attempt} attempts)` : '';
        if (e instanceof StallError) {
          throw new RegistryError(
            `registry ${this.registry} stalled: no data for ${e.ms / 1000} s on ${method} ${new URL(url).pathname}${tries}; check the registry and the network, or raise the stall timeout (--stall-timeout, HULL_REGISTRY_STALL_TIMEOUT)`,
          );
        }
        throw new RegistryError(
          `registry ${this.registry} is not reachable at ${this.base}: ${networkCause(e)}${tries}; ${hostHint(this.registry, e)}`,
        );
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
        throw new AuthenticationError(
          `registry ${this.registry} refused ${this.opts.credentials ? `the credentials of ${this.opts.credentials.username}` : 'access without credentials'} (${text}); log in with: hull login ${this.registry}`,
        );
      }
      if (res.status === 429 || res.status >= 500) {
        if (attempt < this.attempts) {
          const retryAfter = Number(res.headers.get('retry-after'));
          await res.body?.cancel().catch(() => {
            /* gone */
          });
          await sleep(
            Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter * 1000, 10_000) : this.delay(attempt),
          );
          continue;
        }
        const { text } = await errorText(res);
        const what = res.status === 429 ? 'is rate-limiting hull (429 Too Many Requests)' : `failed with ${text}`;
        throw new RegistryError(
          `registry ${this.registry} ${what} for ${method} ${new URL(url).pathname}, ${attempt} attempts; try again later`,
        );
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
      let res!: Response;
      let text = '';
      for (let attempt = 1; ; attempt++) {
        try {
          res = await stallFetch(
            realm,
            { headers: { 'User-Agent': USER_AGENT, ...(creds ? { Authorization: basic(creds) } : {}) } },
            this.stallMs,
          );
          text = await res.text();
          if ((res.status === 429 || res.status >= 500) && attempt < this.attempts) {
            await sleep(this.delay(attempt));
            continue;
          }
          break;
        } catch (e) {
          if (attempt < this.attempts && errnoOf(e) !== 'ENOTFOUND') {
            await sleep(this.delay(attempt));
            continue;
          }
          const why =
            e instanceof StallError ? `it sent no data for ${e.ms / 1000} s (stall timeout)` : networkCause(e);
          throw new RegistryError(
            `the token server of registry ${this.registry} (${realm.origin}) is not reachable: ${why}${attempt > 1 ? ` (after ${attempt} attempts)` : ''}`,
          );
        }
      }
      res = new Response(text, { status: res.status, statusText: res.statusText, headers: res.headers });
      if (res.status === 401 || res.status === 403) {
        const { text } = await errorText(res);
        throw new AuthenticationError(
          `registry ${this.registry} refused ${creds ? `the credentials of ${creds.username}` : 'an anonymous token'} (${text}); log in with: hull login ${this.registry}`,
        );
      }
      if (!res.ok) {
        const { text } = await errorText(res);
        throw new RegistryError(`the token server of registry ${this.registry} failed: ${text}`);
      }
      const body = (await res.json().catch(() => ({}))) as { token?: string; access_token?: string };
      const token = body.token ?? body.access_token;
      if (!token) throw new RegistryError(`the token server of registry ${this.registry} answered without a token`);
      this.tokens.set(scopeKey, token);
      return;
    }
    if (challenges.some((c) => c.scheme === 'basic') && creds) {
      this.useBasic = true;
      return;
    }
    throw new AuthenticationError(
      `registry ${this.registry} requires authentication; log in with: hull login ${this.registry}`,
    );
  }

  /** GET /v2/: checks that the registry answers and, with credentials, that they are accepted. */
  async ping(): Promise<void> {
    const res = await this.request('GET', '/v2/', { scopes: [] });
    await res.body?.cancel();
    if (!res.ok)
      throw new RegistryError(
        `registry ${this.registry} does not speak the registry API at ${this.base}/v2/ (${res.status} ${res.statusText})`,
      );
  }

  /** A manifest (or index) by tag or digest, with its bytes verified against the digest when it is known. */
  async getManifest(repo: string, ref: string, display: string): Promise<FetchedManifest> {
    const res = await this.request('GET', `/v2/${repo}/manifests/${ref}`, {
      scopes: [`repository:${repo}:pull`],
      headers: { Accept: ACCEPT },
      buffer: true,
    });
    if (res.status === 404) {
      const { text } = await errorText(res);
      throw new NotFoundError(`image not found in registry: ${display} (${text})`);
    }
    if (!res.ok) {
      const { text } = await errorText(res);
      throw new RegistryError(`registry ${this.registry} refused the manifest of ${display}: ${text}`);
    }
    if (Number(res.headers.get('content-length') ?? 0) > MAX_MANIFEST)
      throw new RegistryError(`the manifest of ${display} is larger than ${MAX_MANIFEST} bytes`);
    const bytes = Buffer.from(await res.arrayBuffer());
    if (bytes.length > MAX_MANIFEST)
      throw new RegistryError(`the manifest of ${display} is larger than ${MAX_MANIFEST} bytes`);
    const digest = sha256(bytes);
    const expected = ref.startsWith('sha256:') ? ref : res.headers.get('docker-content-digest');
    if (expected?.startsWith('sha256:') && expected !== digest) {
      throw new RegistryError(
        `registry ${this.registry} sent a manifest for ${display} whose digest is ${digest}, not ${expected}; nothing was stored`,
      );
    }
    let mediaType = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
    try {
      const parsed = JSON.parse(bytes.toString('utf8')) as {
        mediaType?: string;
        manifests?: unknown;
        config?: unknown;
      };
      if (parsed.mediaType) mediaType = parsed.mediaType;
      else if (!Object.values(MANIFEST_TYPES).includes(mediaType as never))
        mediaType = parsed.manifests ? MANIFEST_TYPES.ociIndex : MANIFEST_TYPES.ociManifest;
    } catch {
      throw new RegistryError(`the manifest of ${display} from registry ${this.registry} is not JSON`);
    }
    return { bytes, mediaType, digest };
  }

  /** Whether the repository has the blob (HEAD). */
  async hasBlob(repo: string, digest: string, scopes: string[]): Promise<boolean> {
    const res = await this.request('HEAD', `/v2/${repo}/blobs/${digest}`, { scopes, buffer: true });
    await res.body?.cancel();
    if (res.status === 404) return false;
    if (res.ok) return true;
    throw new RegistryError(
      `registry ${this.registry} failed to check blob ${digest} of ${repo}: ${res.status} ${res.statusText}`,
    );
  }

  /**
   * A blob's bytes from `offset` on, as a stream, for downloads. Tries node:http(s) first: its Buffer chunks cost
   * about a third of the CPU time of fetch's web streams, which shows on a fast local registry (the pull's
   * throughput is CPU-bound there). Redirects (registries hand blobs to object stores) are followed, with the
   * Authorization header dropped when the origin changes. Any other answer, or a connection error, goes the
   * fetch way ({@link getBlob}): auth challenges, retries and error messages live there. A stall (no byte for
   * the stall timeout) before the head or in the body is a StallError, for the caller to retry.
   *
   * With `offset` > 0 the request asks for `Range: bytes=offset-`; `offset` in the result is where the stream
   * really starts: the same on a 206 whose Content-Range agrees, 0 when the registry sent the whole blob.
   * `ranges` says whether the registry takes range requests (a 206, or `Accept-Ranges: bytes`).
   */
  async openBlob(
    repo: string,
    digest: string,
    offset = 0,
    signal?: AbortSignal,
  ): Promise<{ body: AsyncIterable<Uint8Array>; offset: number; ranges: boolean }> {
    const scopeKey = `repository:${repo}:pull`;
    const token = this.tokens.get(scopeKey);
    const auth = token
      ? `Bearer ${token}`
      : this.useBasic && this.opts.credentials
        ? basic(this.opts.credentials)
        : undefined;
    const range: Record<string, string> = offset > 0 ? { Range: `bytes=${offset}-` } : {};
    let url = new URL(`${this.base}/v2/${repo}/blobs/${digest}`);
    const origin = url.origin;
    for (let hop = 0; hop < 6; hop++) {
      const headers: Record<string, string> = {
        'User-Agent': USER_AGENT,
        ...range,
        ...(auth && url.origin === origin ? { Authorization: auth } : {}),
      };
      let got: Awaited<ReturnType<typeof httpGet>>;
      try {
        got = await httpGet(url, headers, this.stallMs, signal);
      } catch (e) {
        if (e instanceof StallError || signal?.aborted) throw e;
        break;
      }
      const { res, stalled } = got;
      const status = res.statusCode ?? 0;
      const ranges = status === 206 || /\bbytes\b/i.test(String(res.headers['accept-ranges'] ?? ''));
      if (status === 200) return { body: guarded(res, stalled), offset: 0, ranges };
      if (status === 206) {
        const m = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''));
        if (m && Number(m[1]) === offset) return { body: guarded(res, stalled), offset, ranges: true };
        res.destroy();
        return this.openBlob(repo, digest, 0, signal); // a range hull did not ask for: start over
      }
      res.resume();
      if (status === 416 && offset > 0) return this.openBlob(repo, digest, 0, signal); // the partial is not a prefix: start over
      const location = res.headers.location;
      if (status >= 300 && status < 400 && location) {
        url = new URL(location, url);
        continue;
      }
      break;
    }
    const res = await this.getBlob(repo, digest, offset);
    const m = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '');
    const from = res.status === 206 && m && Number(m[1]) === offset ? offset : 0;
    if (res.status === 206 && from === 0 && offset > 0) {
      await res.body?.cancel();
      return this.openBlob(repo, digest, 0, signal);
    }
    const ranges = res.status === 206 || /\bbytes\b/i.test(res.headers.get('accept-ranges') ?? '');
    return { body: res.body as unknown as AsyncIterable<Uint8Array>, offset: from, ranges };
  }

  /** GET a blob; the answer's body is the caller's to read (and verify). */
  async getBlob(repo: string, digest: string, offset = 0): Promise<Response> {
    const res = await this.request('GET', `/v2/${repo}/blobs/${digest}`, {
      scopes: [`repository:${repo}:pull`],
      ...(offset > 0 ? { headers: { Range: `bytes=${offset}-` } } : {}),
    });
    if (res.status === 416 && offset > 0) {
      await res.body?.cancel();
      return this.getBlob(repo, digest, 0);
    }
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
    const res = await this.request('POST', `/v2/${repo}/blobs/uploads/${q}`, {
      scopes,
      headers: { 'Content-Length': '0' },
    });
    await res.body?.cancel();
    if (res.status === 201 && mountFrom) return 'mounted';
    if (res.status !== 202)
      throw new RegistryError(
        `registry ${this.registry} refused to start an upload to ${repo}: ${res.status} ${res.statusText}`,
      );
    const location = res.headers.get('location');
    if (!location) throw new RegistryError(`registry ${this.registry} started an upload to ${repo} without a Location`);
    return new URL(location, this.base).toString();
  }

  /** PATCH one chunk of an upload; returns the next upload URL. */
  async uploadChunk(repo: string, url: string, start: number, length: number, body: () => BodyInit): Promise<string> {
    const res = await this.request('PATCH', '', {
      url,
      body,
      scopes: [`repository:${repo}:pull,push`],
      headers: {
        'Content-Type': 'application/octet-stream',
        'Content-Length': String(length),
        'Content-Range': `${start}-${start + length - 1}`,
      },
    });
    await res.body?.cancel();
    if (res.status !== 202)
      throw new RegistryError(
        `registry ${this.registry} refused a chunk of an upload to ${repo}: ${res.status} ${res.statusText}`,
      );
    return new URL(res.headers.get('location') ?? url, this.base).toString();
  }

  /** Finish an upload with PUT ?digest= (and the whole blob as the body for a monolithic upload). */
  async finishUpload(
    repo: string,
    url: string,
    digest: string,
    body?: { length: number; make: () => BodyInit },
  ): Promise<void> {
    const u = new URL(url);
    u.searchParams.set('digest', digest);
    const res = await this.request('PUT', '', {
      url: u.toString(),
      scopes: [`repository:${repo}:pull,push`],
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
      scopes: [`repository:${repo}:pull,push`],
      body: () => new Uint8Array(bytes),
      headers: { 'Content-Type': mediaType },
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
  /** see {@link RegistryClientOptions.stallTimeoutMs} */
  stallTimeoutMs?: number;
}

/** A client for `registry` with the saved credentials for it and the caller's transport options. */
export function clientFor(registry: string, opts: TransferClientOptions): RegistryClient {
  const creds = opts.credentials?.get(registry);
  return new RegistryClient(registry, {
    ...(creds ? { credentials: creds } : {}),
    ...(opts.insecure ? { insecure: true } : {}),
    ...(opts.attempts ? { attempts: opts.attempts } : {}),
    ...(opts.backoffMs !== undefined ? { backoffMs: opts.backoffMs } : {}),
    ...(opts.stallTimeoutMs !== undefined ? { stallTimeoutMs: opts.stallTimeoutMs } : {}),
  });
}
