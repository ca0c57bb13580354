import { readFileSync } from 'node:fs';
import { InvalidArgumentError, NotFoundError } from './errors.js';
import type { LogConfig, MountSpec, RestartPolicy } from './instance.js';

/**
 * Parsers for the user's flag values, shared by the CLI and (later) the REST API.
 * Each throws InvalidArgumentError with a message naming the flag and the expected form.
 */

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** A size as written, in bytes (unbounded), or InvalidArgumentError. */
function sizeBytes(value: string, flag: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgtb]?)(?:i?b)?\s*$/i.exec(value);
  if (!m)
    throw new InvalidArgumentError(
      `invalid ${flag} "${value}": expected a number with an optional unit b, k, m, g (e.g. 64m)`,
    );
  const n = Number(m[1]) * UNITS[m[2]!.toLowerCase()]!;
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`invalid ${flag} "${value}"`);
  return Math.floor(n);
}

/**
 * "64m", "1.5g", "512", "128MiB" → bytes (docker's RAMInBytes: binary units). Sizes past 2^53-1 bytes
 * (8 PiB) are refused: JSON numbers lose whole bytes there, so hull could not store them exactly.
 */
export function parseSize(value: string, flag = 'size'): number {
  const n = sizeBytes(value, flag);
  if (n > Number.MAX_SAFE_INTEGER)
    throw new InvalidArgumentError(`invalid ${flag} "${value}": too large (at most 8 PiB)`);
  return n;
}

/**
 * A memory limit (--memory): like parseSize, but a limit past 2^53-1 bytes (8 PiB, more than any host
 * has) is no limit, 0, as the kernel makes of limits past what it can count: stored and shown as 0
 * (unlimited, docker's HostConfig.Memory convention), never as a number JSON cannot hold exactly.
 */
export function parseMemoryLimit(value: string, flag: string): number {
  const n = sizeBytes(value, flag);
  return n > Number.MAX_SAFE_INTEGER ? 0 : n;
}

/** Like parseSize, but "-1" means unlimited (docker's --memory-swap), as does a size past 2^53-1 bytes. */
export function parseSizeOrUnlimited(value: string, flag: string): number {
  if (value.trim() === '-1') return -1;
  const n = sizeBytes(value, flag);
  return n > Number.MAX_SAFE_INTEGER ? -1 : n;
}

export function parseNumber(
  value: string,
  flag: string,
  opts: { integer?: boolean; min?: number; max?: number } = {},
): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || (opts.integer && !Number.isInteger(n))) {
    throw new InvalidArgumentError(`invalid ${flag} "${value}": expected ${opts.integer ? 'an integer' : 'a number'}`);
  }
  if (opts.min !== undefined && n < opts.min)
    throw new InvalidArgumentError(`invalid ${flag} "${value}": must be at least ${opts.min}`);
  if (opts.max !== undefined && n > opts.max)
    throw new InvalidArgumentError(`invalid ${flag} "${value}": must be at most ${opts.max}`);
  return n;
}

/** A volume's name (docker's rule). */
export const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/**
 * -v SRC:DST[:ro|rw]: a bind mount when SRC is an absolute host path, a named volume when it is a name
 * (made on first use), an anonymous volume with DST alone.
 */
export function parseVolume(spec: string): MountSpec {
  const parts = spec.split(':');
  if (parts.length === 1 && spec.startsWith('/'))
    return { type: 'bind', source: '', target: spec, readonly: false, volume: '', anonymous: true };
  if (parts.length < 2 || parts.length > 3 || !parts[0] || !parts[1]) {
    throw new InvalidArgumentError(`invalid volume "${spec}": expected SRC:DST[:ro|rw] with absolute paths`);
  }
  const [source, target, mode = 'rw'] = parts as [string, string, string?];
  if (!source.startsWith('/') && !VOLUME_NAME.test(source))
    throw new InvalidArgumentError(
      `invalid volume "${spec}": the source must be an absolute host path or a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)`,
    );
  if (!target.startsWith('/'))
    throw new InvalidArgumentError(`invalid volume "${spec}": the destination must be an absolute path`);
  const opts = mode.split(',');
  for (const o of opts) {
    if (!['ro', 'rw', 'z', 'Z'].includes(o))
      throw new InvalidArgumentError(`invalid volume "${spec}": unknown option "${o}" (use ro or rw)`);
  }
  if (!source.startsWith('/'))
    return { type: 'bind', source: '', target, readonly: opts.includes('ro'), volume: source };
  // docker's -v makes a missing host directory (--mount refuses it)
  return { type: 'bind', source, target, readonly: opts.includes('ro'), createHostPath: true };
}

/** One CSV record (docker's --mount uses encoding/csv): fields split at commas, "quoted" fields may hold them. */
function csvFields(text: string, flag: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i <= text.length) {
    let field = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= text.length) throw new InvalidArgumentError(`invalid ${flag} "${text}": a quote is not closed`);
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += text[i++];
      }
      if (i < text.length && text[i] !== ',')
        throw new InvalidArgumentError(`invalid ${flag} "${text}": text after a closing quote`);
    } else {
      const j = text.indexOf(',', i);
      field = j < 0 ? text.slice(i) : text.slice(i, j);
      i = j < 0 ? text.length : j;
    }
    out.push(field);
    i++;
  }
  return out;
}

const BIND_PROPAGATIONS = ['rprivate', 'private', 'rshared', 'shared', 'rslave', 'slave'];

/** A --mount boolean option: alone it means true. */
function mountBool(key: string, value: string | undefined, spec: string): boolean {
  if (value === undefined) return true;
  const v = value.toLowerCase();
  if (['1', 't', 'true'].includes(v)) return true;
  if (['0', 'f', 'false'].includes(v)) return false;
  throw new InvalidArgumentError(`invalid --mount "${spec}": invalid value for ${key}: ${value}`);
}

/**
 * --mount type=bind|tmpfs,... (docker's CSV syntax): `source`/`src`, `target`/`destination`/`dst`,
 * `readonly`/`ro`, `bind-propagation`, `bind-nonrecursive`, `tmpfs-size`, `tmpfs-mode`. A bind's source must
 * exist (checked when the instance is made). type=volume (docker's default type) names a volume (anonymous without a source).
 */
export function parseMount(spec: string): MountSpec {
  let type = 'volume';
  let source = '';
  let target = '';
  let readonly = false;
  let propagation: string | undefined;
  let nonRecursive = false;
  const tmpfsOptions: string[] = [];
  const volumeOptions: Record<string, string> = {};
  let noCopy = false;
  const kinds = new Set<string>();
  for (const field of csvFields(spec, '--mount')) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).trim().toLowerCase();
    const value = eq < 0 ? undefined : field.slice(eq + 1);
    if (
      value === undefined &&
      key !== 'readonly' &&
      key !== 'ro' &&
      key !== 'bind-nonrecursive' &&
      key !== 'volume-nocopy'
    )
      throw new InvalidArgumentError(`invalid --mount "${spec}": invalid field '${field}' must be a key=value pair`);
    switch (key) {
      case 'type':
        type = (value ?? '').toLowerCase();
        break;
      case 'source':
      case 'src':
        source = value ?? '';
        break;
      case 'target':
      case 'dst':
      case 'destination':
        target = value ?? '';
        break;
      case 'readonly':
      case 'ro':
        readonly = mountBool(key, value, spec);
        break;
      case 'consistency':
        break; // macOS only; docker ignores it on Linux
      case 'bind-propagation':
        kinds.add('bind');
        if (!BIND_PROPAGATIONS.includes(value ?? ''))
          throw new InvalidArgumentError(
            `invalid --mount "${spec}": invalid propagation mode: ${value} (use ${BIND_PROPAGATIONS.join(', ')})`,
          );
        propagation = value;
        break;
      case 'bind-nonrecursive':
        kinds.add('bind');
        nonRecursive = mountBool(key, value, spec);
        break;
      case 'tmpfs-size':
        kinds.add('tmpfs');
        tmpfsOptions.push(`size=${parseSize(value ?? '', '--mount tmpfs-size')}`);
        break;
      case 'tmpfs-mode': {
        kinds.add('tmpfs');
        if (!/^[0-7]{1,4}$/.test(value ?? ''))
          throw new InvalidArgumentError(`invalid --mount "${spec}": tmpfs-mode must be octal, e.g. 1777`);
        tmpfsOptions.push(`mode=${value}`);
        break;
      }
      case 'volume-driver':
      case 'volume-label':
        kinds.add('volume');
        break;
      case 'volume-nocopy':
        kinds.add('volume');
        noCopy = mountBool(key, value, spec);
        break;
      case 'volume-opt': {
        kinds.add('volume');
        const i = (value ?? '').indexOf('=');
        if (i <= 0) throw new InvalidArgumentError(`invalid --mount "${spec}": volume-opt takes KEY=VALUE`);
        volumeOptions[value!.slice(0, i)] = value!.slice(i + 1);
        break;
      }
      default:
        throw new InvalidArgumentError(`invalid --mount "${spec}": unexpected key '${key}' in '${field}'`);
    }
  }
  for (const k of kinds)
    if (k !== type)
      throw new InvalidArgumentError(
        `invalid --mount "${spec}": cannot mix '${k}-*' options with mount type '${type}'`,
      );
  if (target === '') throw new InvalidArgumentError(`invalid --mount "${spec}": target is required`);
  const bad = `invalid mount config for type "${type}"`;
  if (!target.startsWith('/'))
    throw new InvalidArgumentError(`${bad}: invalid mount path: '${target}' mount path must be absolute`);
  if (type === 'bind') {
    if (source === '') throw new InvalidArgumentError(`${bad}: field Source must not be empty`);
    if (!source.startsWith('/'))
      throw new InvalidArgumentError(`${bad}: invalid mount path: '${source}' mount path must be absolute`);
    return {
      type: 'bind',
      source,
      target,
      readonly,
      ...(propagation !== undefined ? { propagation } : {}),
      ...(nonRecursive ? { nonRecursive } : {}),
    };
  }
  if (type === 'tmpfs') {
    if (source !== '') throw new InvalidArgumentError(`${bad}: field Source must not be specified`);
    return { type: 'tmpfs', target, options: [...(readonly ? ['ro'] : []), ...tmpfsOptions] };
  }
  if (type === 'volume') {
    if (source !== '' && !VOLUME_NAME.test(source))
      throw new InvalidArgumentError(`${bad}: invalid volume name "${source}" ([a-zA-Z0-9][a-zA-Z0-9_.-]+)`);
    return {
      type: 'bind',
      source: '',
      target,
      readonly,
      volume: source,
      ...(source ? {} : { anonymous: true }),
      ...(Object.keys(volumeOptions).length ? { volumeOptions } : {}),
      ...(noCopy ? { noCopy } : {}),
    };
  }
  throw new InvalidArgumentError(`invalid --mount "${spec}": unknown mount type '${type}' (use bind or tmpfs)`);
}

/** --sysctl KEY=VALUE (repeatable) → a map; a later key wins. */
export function parseSysctls(items: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq <= 0)
      throw new InvalidArgumentError(`invalid --sysctl "${item}": expected KEY=VALUE, e.g. net.ipv4.ip_forward=1`);
    out[item.slice(0, eq).trim()] = item.slice(eq + 1);
  }
  return out;
}

/** --tmpfs DST[:OPTIONS] */
export function parseTmpfs(spec: string): MountSpec {
  const i = spec.indexOf(':');
  const target = i < 0 ? spec : spec.slice(0, i);
  const options =
    i < 0
      ? []
      : spec
          .slice(i + 1)
          .split(',')
          .filter(Boolean);
  if (!target.startsWith('/'))
    throw new InvalidArgumentError(`invalid --tmpfs "${spec}": the destination must be an absolute path`);
  return { type: 'tmpfs', target, options };
}

/** --restart no|on-failure[:N]|always|unless-stopped */
export function parseRestart(value: string): RestartPolicy {
  const [name, max] = value.split(':');
  if (name === 'no' || name === 'always' || name === 'unless-stopped') {
    if (max !== undefined)
      throw new InvalidArgumentError(`invalid --restart "${value}": only on-failure takes a retry count`);
    return { name, maxRetries: 0 };
  }
  if (name === 'on-failure') {
    return {
      name,
      maxRetries: max === undefined ? 0 : parseNumber(max, '--restart retry count', { integer: true, min: 0 }),
    };
  }
  throw new InvalidArgumentError(`invalid --restart "${value}": expected no, on-failure[:N], always or unless-stopped`);
}

/** -e KEY=VALUE, or -e KEY to take the value from hull's environment (docker's rule). */
export function parseEnv(items: string[], env: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq === 0 || item === '')
      throw new InvalidArgumentError(`invalid environment variable "${item}": expected KEY=VALUE`);
    if (eq > 0) out.push(item);
    else if (env[item] !== undefined) out.push(`${item}=${env[item]}`);
  }
  return out;
}

/** --env-file: lines KEY=VALUE or KEY, # comments and blank lines ignored. */
export function parseEnvFile(path: string, env: NodeJS.ProcessEnv = process.env): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new NotFoundError(`cannot read env file ${path}: no such file or not readable`);
  }
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.replace(/^\s+/, ''))
    .filter((l) => l !== '' && !l.startsWith('#'));
  for (const [i, l] of lines.entries()) {
    if (/\s/.test(l.split('=')[0]!))
      throw new InvalidArgumentError(`invalid env file ${path}, line ${i + 1}: variable name contains whitespace`);
  }
  return parseEnv(lines, env);
}

/** --label k=v */
export function parseLabels(items: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq === 0) throw new InvalidArgumentError(`invalid label "${item}": expected KEY=VALUE`);
    if (eq < 0) out[item] = '';
    else out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

/** --ulimit nofile=1024[:2048] */
export function parseUlimit(spec: string): { type: string; soft: number; hard: number } {
  const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(spec);
  if (!m)
    throw new InvalidArgumentError(`invalid --ulimit "${spec}": expected NAME=SOFT[:HARD], e.g. nofile=1024:2048`);
  const soft = Number(m[2]);
  const hard = m[3] === undefined ? soft : Number(m[3]);
  if (soft > hard) throw new InvalidArgumentError(`invalid --ulimit "${spec}": the soft limit exceeds the hard limit`);
  return { type: m[1]!, soft, hard };
}

/** --uidmap/--gidmap CONTAINER:HOST:SIZE */
export function parseIdMap(spec: string, flag: string): { containerID: number; hostID: number; size: number } {
  const m = /^(\d+):(\d+):(\d+)$/.exec(spec);
  if (!m || Number(m[3]) === 0)
    throw new InvalidArgumentError(
      `invalid ${flag} "${spec}": expected CONTAINER_ID:HOST_ID:SIZE, e.g. 0:100000:65536`,
    );
  return { containerID: Number(m[1]), hostID: Number(m[2]), size: Number(m[3]) };
}

/** Signal names and numbers: "TERM", "SIGTERM", "15" → "SIGTERM" (or the number as text for realtime signals). */
const SIGNALS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGSTKFLT: 16,
  SIGCHLD: 17,
  SIGCONT: 18,
  SIGSTOP: 19,
  SIGTSTP: 20,
  SIGTTIN: 21,
  SIGTTOU: 22,
  SIGURG: 23,
  SIGXCPU: 24,
  SIGXFSZ: 25,
  SIGVTALRM: 26,
  SIGPROF: 27,
  SIGWINCH: 28,
  SIGIO: 29,
  SIGPWR: 30,
  SIGSYS: 31,
};

export function parseSignal(value: string): string {
  const v = value.trim().toUpperCase();
  if (/^\d+$/.test(v)) {
    const n = Number(v);
    if (n < 1 || n > 64) throw new InvalidArgumentError(`invalid signal "${value}": numbers run from 1 to 64`);
    const name = Object.entries(SIGNALS).find(([, num]) => num === n)?.[0];
    return name ?? String(n);
  }
  const name = v.startsWith('SIG') ? v : `SIG${v}`;
  if (!(name in SIGNALS))
    throw new InvalidArgumentError(`invalid signal "${value}": expected a name like SIGTERM or a number`);
  return name;
}

export function signalNumber(name: string): number {
  return /^\d+$/.test(name) ? Number(name) : (SIGNALS[name] ?? 15);
}

/** --since/--until: RFC 3339, unix seconds, or a duration back from now like 10m / 2h / 30s. Returns ms since epoch. */
export function parseTimeArg(v: string, flag: string, now = Date.now()): number {
  // a Go duration, as docker takes it: 10m, 1h30m, 1.5h, 250ms
  if (/^(\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/.test(v)) {
    const unit = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
    let ms = 0;
    for (const m of v.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g))
      ms += Number(m[1]) * unit[m[2] as keyof typeof unit];
    return now - ms;
  }
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  if (Number.isNaN(t))
    throw new InvalidArgumentError(`invalid ${flag} "${v}": use RFC 3339, unix seconds or a duration like 10m`);
  return t;
}

/**
 * --log-driver and --log-opt (docker's names and checks): json-file (docker's default), k8s-file (conmon's) or
 * none; options max-size (binary units, as docker's RAMInBytes), max-file (at least 1, with max-size),
 * labels and env (comma-separated names, shown by `logs --details`), compress=false.
 */
export function parseLogConfig(driver: string | undefined, opts: string[]): LogConfig | undefined {
  if (driver === undefined && opts.length === 0) return undefined;
  const d = driver ?? 'json-file';
  if (d !== 'json-file' && d !== 'k8s-file' && d !== 'none')
    throw new InvalidArgumentError(`invalid --log-driver "${d}": hull logs with json-file, k8s-file or none`);
  const cfg: LogConfig = { driver: d };
  for (const o of opts) {
    const eq = o.indexOf('=');
    if (eq <= 0) throw new InvalidArgumentError(`invalid --log-opt "${o}": expected KEY=VALUE, e.g. max-size=10m`);
    const k = o.slice(0, eq);
    const v = o.slice(eq + 1);
    if (d === 'none') throw new InvalidArgumentError(`unknown log opt '${k}' for none log driver`);
    if (k === 'max-size') {
      if (v !== '-1') cfg.maxSize = parseSize(v, '--log-opt max-size');
    } else if (k === 'max-file') {
      cfg.maxFile = parseNumber(v, '--log-opt max-file', { integer: true, min: 1 });
    } else if (k === 'labels' || k === 'env') {
      cfg[k] = v.split(',').filter((x) => x !== '');
    } else if (k === 'compress') {
      if (v !== 'false')
        throw new InvalidArgumentError(
          '--log-opt compress=true is not supported: hull keeps rotated logs uncompressed',
        );
    } else throw new InvalidArgumentError(`unknown log opt '${k}' for ${d} log driver`);
  }
  if (cfg.maxFile !== undefined && cfg.maxFile > 1 && cfg.maxSize === undefined)
    throw new InvalidArgumentError('--log-opt max-file needs max-size as well');
  return cfg;
}

/** Merge environment lists: later entries replace earlier ones with the same name; "KEY" alone means KEY=. */
export function mergeEnv(...lists: readonly string[][]): string[] {
  const map = new Map<string, string>();
  for (const list of lists) {
    for (const entry of list) {
      const eq = entry.indexOf('=');
      const key = eq < 0 ? entry : entry.slice(0, eq);
      if (key === '')
        throw new InvalidArgumentError(`invalid environment variable ${JSON.stringify(entry)}: the name is empty`);
      map.set(key, eq < 0 ? `${key}=` : entry);
    }
  }
  return [...map.values()];
}

/**
 * A stall timeout as given to `--stall-timeout` or HULL_REGISTRY_STALL_TIMEOUT: seconds (`30`, `2.5`), or with a
 * unit (`500ms`, `30s`, `2m`); 0 turns the check off. Returns milliseconds.
 */
export function parseStallTimeout(text: string, from = '--stall-timeout'): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m)
    throw new InvalidArgumentError(
      `invalid ${from} value "${text}": give seconds (30) or a duration (500ms, 30s, 2m); 0 turns it off`,
    );
  const n = Number(m[1]);
  return Math.round(m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000);
}

const GO_UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * A Go duration as docker's flags take them (`30s`, `1m30s`, `500ms`, `0`); returns milliseconds (fractions of a
 * millisecond kept). Negative durations are refused.
 */
export function parseGoDuration(value: string, flag: string): number {
  const v = value.trim();
  if (v === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(v))) {
    total += Number(m[1]) * GO_UNIT_MS[m[2]!]!;
    pos = re.lastIndex;
  }
  if (pos === 0 || pos !== v.length)
    throw new InvalidArgumentError(`invalid ${flag} "${value}": give a duration such as 30s, 1m30s or 500ms`);
  return total;
}
