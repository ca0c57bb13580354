/**
 * Listing instances (`hull ps`, the Docker API's `GET /containers/json`): docker's filters, `-n`/`-l`, and the
 * ports column. Filters come as `key=value` strings (the CLI's --filter) or as the API's JSON map
 * (`{"status":["running"]}`); both parse into a FilterMap. docker's semantics: values of one key OR (except
 * `label`, whose values must all match), different keys AND.
 */
import { InvalidArgumentError } from '../common/errors.js';
import type { InstanceRecord } from './store.js';
import type { Engine } from './engine.js';
import { publishedPorts } from './networking.js';
import { refreshForView } from './lifecycle/exit.js';
import { healthOf } from './describe.js';
import { DEFAULT_NETWORK } from '../network/store.js';
import type { ImageRecord } from '../image/store.js';

/** Filter key → the values given for it. */
export type FilterMap = Record<string, string[]>;

/** The filters `ps` accepts (docker's list, with hull's meaning of isolation). */
export const PS_FILTERS = [
  'id',
  'name',
  'label',
  'status',
  'ancestor',
  'network',
  'volume',
  'exited',
  'health',
  'isolation',
  'before',
  'since',
  'publish',
  'expose',
] as const;

const STATUSES = ['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'];
const HEALTH = ['starting', 'healthy', 'unhealthy', 'none'];
/**
 * The kind an `isolation=` value names: one of `kinds` (hull's: container, vm), or docker's `process` and `default`,
 * which mean the default kind (the first; a container).
 */
function isolationKind(value: string, kinds: readonly string[]): string | undefined {
  const v = value.toLowerCase();
  if (kinds.includes(v)) return v;
  return v === 'process' || v === 'default' ? kinds[0] : undefined;
}

const invalid = (key: string, value?: string) =>
  new InvalidArgumentError(`invalid filter '${key}${value === undefined ? '' : `=${value}`}'`);

/** `--filter key=value` strings (repeatable) → a FilterMap. */
export function parseFilterArgs(args: string[]): FilterMap {
  const out: FilterMap = {};
  for (const a of args) {
    const i = a.indexOf('=');
    if (i <= 0) throw new InvalidArgumentError(`bad format of filter "${a}" (expected name=value)`);
    const key = a.slice(0, i).trim().toLowerCase();
    (out[key] ??= []).push(a.slice(i + 1).trim());
  }
  return out;
}

/**
 * The Docker API's `filters` query parameter → a FilterMap: `{"key":["v1","v2"]}`, or the older
 * `{"key":{"v1":true}}` form docker still accepts.
 */
export function parseFilterJson(text: string): FilterMap {
  if (text.trim() === '') return {};
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new InvalidArgumentError(`invalid filters: not JSON (expected {"key":["value"]})`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw))
    throw new InvalidArgumentError('invalid filters: expected a JSON object such as {"status":["running"]}');
  const out: FilterMap = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) out[k] = v as string[];
    else if (v && typeof v === 'object' && !Array.isArray(v))
      out[k] = Object.entries(v as Record<string, unknown>)
        .filter(([, on]) => on === true)
        .map(([x]) => x);
    else throw new InvalidArgumentError(`invalid filters: the values of "${k}" must be a list of strings`);
  }
  return out;
}

/** One port as docker's ps shows it (types.Port): a published one has a host address and port. */
export interface PortEntry {
  ip: string;
  privatePort: number;
  publicPort: number;
  type: string;
}

/** A `publish=`/`expose=` value: port[-port][/proto] → "port/proto" keys (proto tcp by default). */
function portKeys(key: string, value: string): string[] {
  const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/.exec(value);
  if (!m) throw invalid(key, value);
  const first = Number(m[1]);
  const last = m[2] ? Number(m[2]) : first;
  if (last < first || last > 65535) throw invalid(key, value);
  const out: string[] = [];
  for (let p = first; p <= last; p++) out.push(`${p}/${m[3] ?? 'tcp'}`);
  return out;
}

/**
 * Reject unknown keys and bad values the way docker does (`invalid filter 'foo'`, `invalid filter 'status=x'`);
 * `kinds` are the instance kinds of this build (Engine.kinds()), the default first.
 */
export function checkPsFilters(f: FilterMap, kinds: readonly string[]): void {
  for (const [key, values] of Object.entries(f)) {
    if (!(PS_FILTERS as readonly string[]).includes(key)) throw invalid(key);
    for (const v of values) {
      if (key === 'status' && !STATUSES.includes(v)) throw invalid(key, v);
      if (key === 'health' && !HEALTH.includes(v)) throw invalid(key, v);
      if (key === 'isolation' && !isolationKind(v, kinds)) throw invalid(key, v);
      if (key === 'exited' && !/^-?\d+$/.test(v)) throw invalid(key, v);
      if (key === 'publish' || key === 'expose') portKeys(key, v);
    }
  }
}

/** What matching needs besides the record (resolved once per listing). */
export interface MatchContext {
  /** the instance kinds of this build, the default first (Engine.kinds()) */
  kinds: readonly string[];
  /** image ids the `ancestor` values name, with their descendants; null without an ancestor filter */
  ancestorIds: Set<string> | null;
  /** created-at bounds from `before`/`since` (exclusive) */
  before?: number;
  since?: number;
  /** network name → id, to match `network=` by id */
  networkIds: Record<string, string>;
  /** the instance's ports now (ps's PORTS) */
  ports(rec: InstanceRecord): PortEntry[];
}

/** `name=` values are regular expressions matched against "/name" as docker does (plain "name" also counts). */
function nameMatches(pattern: string, name: string): boolean {
  try {
    const re = new RegExp(pattern);
    return re.test(`/${name}`) || re.test(name);
  } catch {
    return name.includes(pattern);
  }
}

function labelMatches(want: string, labels: Record<string, string>): boolean {
  const i = want.indexOf('=');
  if (i < 0) return Object.hasOwn(labels, want);
  const key = want.slice(0, i);
  return Object.hasOwn(labels, key) && labels[key] === want.slice(i + 1);
}

/** Whether an instance passes every filter (pure; filters checked by checkPsFilters). */
export function matchInstance(rec: InstanceRecord, f: FilterMap, ctx: MatchContext): boolean {
  const c = rec.config;
  const any = (key: string, test: (v: string) => boolean) => !f[key]?.length || f[key]!.some(test);
  if (!any('id', (v) => rec.id.startsWith(v.toLowerCase()))) return false;
  if (!any('name', (v) => nameMatches(v, rec.name))) return false;
  if (!(f.label ?? []).every((v) => labelMatches(v, c.labels))) return false;
  if (!any('status', (v) => v === rec.state)) return false;
  if (ctx.ancestorIds && !ctx.ancestorIds.has(rec.imageId)) return false;
  const networks = c.network === 'bridge' ? (c.networks ?? []).map((n) => n.name) : [c.network];
  if (
    !any('network', (v) => {
      const name = v === 'bridge' || v === 'default' ? DEFAULT_NETWORK : v;
      // by name, or by id (12 hex digits at least, as docker shows them)
      return networks.some((n) => n === name || (v.length >= 12 && (ctx.networkIds[n] ?? '').startsWith(v)));
    })
  )
    return false;
  if (
    !any('volume', (v) =>
      c.mounts.some((m) => m.target === v || (m.type === 'bind' && (m.source === v || m.volume === v))),
    )
  )
    return false;
  // docker: an exit code matches only an instance that ran and stopped
  if (!any('exited', (v) => rec.state === 'exited' && rec.startedAt !== null && (rec.exitCode ?? 0) === Number(v)))
    return false;
  if (!any('health', (v) => (healthOf(rec)?.status ?? 'none') === v)) return false;
  if (!any('isolation', (v) => isolationKind(v, ctx.kinds) === rec.kind)) return false;
  if (ctx.before !== undefined && !(rec.createdAt < ctx.before)) return false;
  if (ctx.since !== undefined && !(rec.createdAt > ctx.since)) return false;
  if (f.publish?.length || f.expose?.length) {
    const publish = new Set((f.publish ?? []).flatMap((v) => portKeys('publish', v)));
    const expose = new Set((f.expose ?? []).flatMap((v) => portKeys('expose', v)));
    const ports = ctx.ports(rec);
    if (!ports.some((p) => publish.has(`${p.publicPort}/${p.type}`) || expose.has(`${p.privatePort}/${p.type}`)))
      return false;
  }
  return true;
}

/** The instance's ports as `ps` shows them: published ones with their host side, exposed-only ones bare (live only). */
export function instancePorts(engine: Engine, rec: InstanceRecord): PortEntry[] {
  if (rec.state !== 'running' && rec.state !== 'paused') return [];
  // a port published on every address answers on IPv6 too when hull's proxy serves it: docker lists `::` as well
  const proxied = engine.networks.proxied(rec.id);
  const out: PortEntry[] = publishedPorts(engine, rec).flatMap((p) => {
    const e = { ip: p.hostIp || '0.0.0.0', privatePort: p.containerPort, publicPort: p.hostPort, type: p.protocol };
    return !p.hostIp && proxied ? [e, { ...e, ip: '::' }] : [e];
  });
  for (const e of rec.config.exposedPorts ?? []) {
    const [port, type = 'tcp'] = e.split('/');
    if (!out.some((p) => p.privatePort === Number(port) && p.type === type))
      out.push({ ip: '', privatePort: Number(port), publicPort: 0, type });
  }
  return out;
}

/**
 * docker's PORTS column (DisplayablePorts, docker 20.10): `0.0.0.0:8080->80/tcp, :::8080->80/tcp, 443/tcp`; consecutive ports that map to the
 * same numbers on the host fold into ranges (`0.0.0.0:8000-8001->8000-8001/tcp`).
 */
export function displayPorts(ports: PortEntry[]): string {
  const sorted = [...ports].sort(
    (a, b) =>
      a.privatePort - b.privatePort ||
      (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0) ||
      a.publicPort - b.publicPort ||
      (a.type < b.type ? -1 : a.type > b.type ? 1 : 0),
  );
  const groups = new Map<string, { first: number; last: number }>();
  const result: string[] = [];
  const mappings: string[] = [];
  const form = (key: string, first: number, last: number) => {
    const [a, b] = key.split('/') as [string, string | undefined];
    const ip = b === undefined ? '' : a;
    const type = b === undefined ? a : b;
    let g = first === last ? String(first) : `${first}-${last}`;
    if (ip) g = `${ip}:${g}->${g}`;
    return `${g}/${type}`;
  };
  for (const p of sorted) {
    let key = p.type;
    if (p.ip) {
      if (p.publicPort !== p.privatePort) {
        // docker 20.10 joins without brackets: `:::8080->80/tcp`
        mappings.push(`${p.ip}:${p.publicPort}->${p.privatePort}/${p.type}`);
        continue;
      }
      key = `${p.ip}/${p.type}`;
    }
    const g = groups.get(key);
    if (!g) groups.set(key, { first: p.privatePort, last: p.privatePort });
    else if (p.privatePort === g.last + 1) g.last = p.privatePort;
    else {
      result.push(form(key, g.first, g.last));
      groups.set(key, { first: p.privatePort, last: p.privatePort });
    }
  }
  for (const [key, g] of groups) result.push(form(key, g.first, g.last));
  return [...result, ...mappings].join(', ');
}

/** Image ids an `ancestor` value names: the image itself and every image built on it (its layers are a prefix). */
export function ancestorIds(value: ImageRecord | undefined, images: ImageRecord[]): string[] {
  if (!value) return [];
  const base = value.config.rootfs.diff_ids;
  const out = [value.id];
  if (base.length === 0) return out;
  for (const img of images) {
    const d = img.config.rootfs.diff_ids;
    if (img.id !== value.id && d.length > base.length && base.every((x, i) => d[i] === x)) out.push(img.id);
  }
  return out;
}

export interface ListOptions {
  /** include instances that are not running (docker's -a) */
  all?: boolean;
  filters?: FilterMap;
  /** only the N most recently created (docker's -n; implies all) */
  last?: number;
  /** only the most recently created (docker's -l; implies all) */
  latest?: boolean;
}

/**
 * The instances `ps` shows, newest first, each refreshed (an exit noticed since is recorded). Bad filters throw
 * InvalidArgumentError; an unknown instance named by before/since throws NotFoundError.
 */
export async function listInstances(engine: Engine, opts: ListOptions = {}): Promise<InstanceRecord[]> {
  const f = opts.filters ?? {};
  const kinds = engine.kinds();
  checkPsFilters(f, kinds);
  const limit = opts.latest ? 1 : (opts.last ?? 0);
  const bound = (key: string, pick: (a: number, b: number) => number) => {
    const vs = f[key] ?? [];
    if (vs.length === 0) return undefined;
    return vs.map((v) => engine.store.lookup(v).createdAt).reduce(pick);
  };
  const before = bound('before', Math.max);
  const since = bound('since', Math.min);
  // docker: -n, before and since show stopped instances too; status= asks for what it names
  const all = !!opts.all || limit > 0 || before !== undefined || since !== undefined || !!f.status?.length;
  let ancestors: Set<string> | null = null;
  if (f.ancestor?.length) {
    const images = await engine.images.list();
    ancestors = new Set();
    for (const v of f.ancestor) {
      const img = await engine.images.resolve(v).catch(() => undefined);
      for (const id of ancestorIds(img, images)) ancestors.add(id);
    }
  }
  const networkIds: Record<string, string> = {};
  if (f.network?.length) for (const d of engine.networks.store.list()) networkIds[d.name] = d.id;
  const ctx: MatchContext = {
    kinds,
    ancestorIds: ancestors,
    ...(before !== undefined ? { before } : {}),
    ...(since !== undefined ? { since } : {}),
    networkIds,
    ports: (rec) => instancePorts(engine, rec),
  };
  const out: InstanceRecord[] = [];
  for (const listed of engine.store.list()) {
    const r = listed.state === 'running' || listed.state === 'paused' ? await refreshForView(engine, listed) : listed;
    if (!r) continue;
    if (!all && r.state !== 'running' && r.state !== 'paused') continue;
    if (!matchInstance(r, f, ctx)) continue;
    out.push(r);
    if (limit > 0 && out.length >= limit) break;
  }
  return out;
}

/**
 * The instance's addresses for `ps --format {{.Addresses}}`: what its own OS reports where the driver can ask
 * it (a full OS VM's guest agent), else the addresses hull's networks gave it; "interface address/prefix" each.
 */
export function instanceAddresses(engine: Engine, rec: InstanceRecord): string[] {
  if (rec.state !== 'running' && rec.state !== 'paused') return [];
  const driver = engine.driver(rec.kind);
  const guest = driver.guestAddresses?.(engine.context(rec)) ?? [];
  if (guest.length > 0) return guest;
  if (rec.config.network !== 'bridge') return [];
  return engine.networks
    .attachments(rec.id)
    .flatMap((a) => [a.address, ...(a.address6 ? [a.address6] : [])].map((x) => `${a.interface} ${x}`));
}
